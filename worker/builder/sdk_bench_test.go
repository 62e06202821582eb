package builder_test

import (
	"fmt"
	"strings"
	"testing"

	_ "github.com/weir-stream/weir/examples/sdk" // example.count_per_minute
)

// sdkCount is datagenCount with the window replaced by the SDK operator
// example.count_per_minute (map state and an event-time timer per key and
// minute), which computes the same counts.
var sdkCount = strings.Replace(datagenCount, `  - name: per-minute
    window:
      tumbling: 1m
      aggregates:
        count: count()
`, `  - name: per-minute
    process: {operator: example.count_per_minute}
`, 1)

// BenchmarkSDKCountPipeline is BenchmarkDatagenCountPipeline with the count
// per key and minute written with the SDK.
func BenchmarkSDKCountPipeline(b *testing.B) {
	if sdkCount == datagenCount {
		b.Fatal("the window was not replaced")
	}
	c0 := cpuNanos()
	runLocal(b, fmt.Sprintf(sdkCount, b.N))
	b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
}
