package cluster

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests and then fails the run when a goroutine started by
// weir, the dev broker or a Kafka client outlives them: every Stop, Close
// and Terminate must wait for what it started. Use it as
//
//	func TestMain(m *testing.M) { cluster.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := LeakedGoroutines(10 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakMarkers are stack substrings of goroutines that must not outlive a
// test.
var leakMarkers = []string{
	"github.com/weir-stream/weir/",
	"github.com/twmb/franz-go/pkg/kfake",
	"github.com/IBM/sarama",
	"google.golang.org/grpc",
}

// leakIgnored are goroutines that live for the whole process by design.
var leakIgnored = []string{
	"cluster.LeakedGoroutines",
	"testing.(*M).Run", // the main test goroutine itself
	"rcrowley/go-metrics.(*meterArbiter)",
}

// LeakedGoroutines waits up to wait for the goroutines matching weir, kfake,
// sarama or gRPC to exit and returns the stacks of those left ("" when
// none).
func LeakedGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
	next:
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, ig := range leakIgnored {
				if strings.Contains(g, ig) {
					continue next
				}
			}
			for _, mk := range leakMarkers {
				if strings.Contains(g, mk) {
					leaked = append(leaked, g)
					continue next
				}
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
