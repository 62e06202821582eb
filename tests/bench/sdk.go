package main

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	_ "github.com/weir-stream/weir/examples/sdk" // example.count_per_minute
	"github.com/weir-stream/weir/internal/registry"
	"github.com/weir-stream/weir/worker/builder"
	"github.com/weir-stream/weir/worker/exchange"
	"github.com/weir-stream/weir/worker/task"
)

// benchSDK compares a count per key and minute written with the SDK
// (example.count_per_minute: map state and an event-time timer) with the
// built-in window aggregate computing the same counts, in the datagen
// pipeline, events per CPU-second of this process. The stock weir binary
// holds no user operators, so both jobs run here, in process, on the real
// task runtime (the worker's GC setting), one after the other -runs
// times; the ratio is the median of the per-pair ratios, so a slow phase
// of the machine hits both sides.
func benchSDK() error {
	old := debug.SetGCPercent(400) // as workers run (--gc-percent)
	defer debug.SetGCPercent(old)
	builtin := datagenCount(*genCount)
	sdk := strings.Replace(builtin, `  - name: per-minute
    window:
      tumbling: 1m
      aggregates:
        count: count()
`, `  - name: per-minute
    process: {operator: example.count_per_minute}
`, 1)
	if sdk == builtin {
		return fmt.Errorf("sdk: the window was not replaced")
	}
	var ratios, sdkEPS, builtinEPS []float64
	for i := 0; i < *runs; i++ {
		b, err := localPerCPU(builtin, *genCount)
		if err != nil {
			return fmt.Errorf("sdk: built-in run %d: %w", i, err)
		}
		s, err := localPerCPU(sdk, *genCount)
		if err != nil {
			return fmt.Errorf("sdk: SDK run %d: %w", i, err)
		}
		builtinEPS, sdkEPS, ratios = append(builtinEPS, b), append(sdkEPS, s), append(ratios, s/b)
	}
	fmt.Printf("BENCH sdk_count_events_per_cpu_s %.0f events/cpu_s\n", median(sdkEPS))
	fmt.Printf("BENCH sdk_builtin_count_events_per_cpu_s %.0f events/cpu_s\n", median(builtinEPS))
	fmt.Printf("BENCH sdk_vs_builtin_ratio %.2f x\n", median(ratios))
	return nil
}

// localPerCPU runs a job's subtasks in this process and returns events
// per CPU-second.
func localPerCPU(specYAML string, n int64) (float64, error) {
	job, err := registry.ParseSpec([]byte(specYAML))
	if err != nil {
		return 0, err
	}
	g, err := graph.Build(job)
	if err != nil {
		return 0, err
	}
	x := exchange.New(nil)
	defer x.Close()
	places := map[string][]task.Address{}
	for _, v := range g.Vertices {
		for range v.Parallelism {
			places[v.ID] = append(places[v.ID], task.Address{WorkerID: "w"})
		}
	}
	c0 := selfCPU()
	var eg errgroup.Group
	for _, v := range g.Vertices {
		for i := range v.Parallelism {
			d := task.Deployment{ID: task.ID{JobID: "bench", Attempt: 1, VertexID: v.ID, Subtask: i},
				Graph: g, Placements: places, LocalWorkerID: "w"}
			eg.Go(func() error {
				return task.Run(context.Background(), d, task.Env{Builder: builder.New(), Exchange: x}, &dataflow.Counters{})
			})
		}
	}
	if err := eg.Wait(); err != nil {
		return 0, err
	}
	return float64(n) / (float64(selfCPU()-c0) / 1e9), nil
}

func selfCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
