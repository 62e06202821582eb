package pipeline

import (
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// BenchmarkNexmark runs each example query at parallelism 1 over b.N
// events into its discard sink on an in-process cluster: one op is one
// event. It is not a figure (make bench's nexmark section is, on the built
// binary): it is there to profile a query with everything in one process,
//
//	go test ./tests/pipeline -run '^$' -bench 'Nexmark/q5$' -benchtime 2000000x -cpuprofile q5.prof
func BenchmarkNexmark(b *testing.B) {
	for _, q := range []string{"q0", "q1", "q2", "q5", "q7", "q12"} {
		b.Run(q, func(b *testing.B) {
			c := cluster.New(b, cluster.Config{Workers: 1, Slots: 4})
			s := exampleSpec(b, q, int64(b.N), 1)
			b.ResetTimer()
			id := c.Submit(b, s)
			c.WaitState(b, id, "FINISHED", 10*time.Minute)
		})
	}
}
