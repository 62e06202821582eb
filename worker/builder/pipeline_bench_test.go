package builder_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/builder"
	"github.com/weir-stream/weir/worker/exchange"
	"github.com/weir-stream/weir/worker/task"
	"golang.org/x/sync/errgroup"
)

const datagenCount = `name: datagen-count
parallelism: 1
pipeline:
  - name: gen
    source:
      datagen: {profile: access-log, seed: 1, count: %d}
      event_time: {field: ts, max_out_of_orderness: 5s}
  - name: ok
    filter: status != 404
  - name: by-ip
    key_by: ip
  - name: per-minute
    window:
      tumbling: 1m
      aggregates:
        count: count()
  - name: out
    sink:
      discard: {}
`

// runLocal runs every subtask of a job on one in-process worker.
func runLocal(tb testing.TB, specYAML string) {
	job, err := spec.Parse([]byte(specYAML))
	if err != nil {
		tb.Fatal(err)
	}
	g, err := graph.Build(job)
	if err != nil {
		tb.Fatal(err)
	}
	x := exchange.New(nil)
	defer x.Close()
	places := map[string][]task.Address{}
	for _, v := range g.Vertices {
		for i := 0; i < v.Parallelism; i++ {
			places[v.ID] = append(places[v.ID], task.Address{WorkerID: "w"})
		}
	}
	var eg errgroup.Group
	for _, v := range g.Vertices {
		for i := 0; i < v.Parallelism; i++ {
			d := task.Deployment{ID: task.ID{JobID: "j", Attempt: 1, VertexID: v.ID, Subtask: i},
				Graph: g, Placements: places, LocalWorkerID: "w"}
			eg.Go(func() error {
				return task.Run(context.Background(), d, task.Env{Builder: builder.New(), Exchange: x}, &dataflow.Counters{})
			})
		}
	}
	if err := eg.Wait(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkDatagenCountPipeline is datagen → filter → key_by → 1m window
// count → discard through the real runtime (one op = one event).
func BenchmarkDatagenCountPipeline(b *testing.B) {
	c0 := cpuNanos()
	runLocal(b, fmt.Sprintf(datagenCount, b.N))
	b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
}

// cpuNanos is the process's user+system CPU time: throughput per CPU-second
// is what the benchmark targets, and it is far less noisy than wall time on
// a shared machine.
func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
