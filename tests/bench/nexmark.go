package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/weir-stream/weir/dataflow/spec"
)

var nexCount = flag.Int64("nexmark-events", 5_000_000, "events in each nexmark query benchmark")

// flinkPerCore is Flink 1.13's published Nexmark throughput per core
// (events/s/core) for the queries weir can run; the setups differ
// (docs/bench.md).
var flinkPerCore = map[string]float64{"q0": 155e3, "q1": 158e3}

// benchNexmark runs each query of examples/nexmark over the nexmark
// datagen profile at parallelism 1 into a discard sink and reports events
// per CPU second of the worker, and the ratio to Flink's figure.
func (e *env) benchNexmark() error {
	for _, q := range []string{"q0", "q1"} {
		data, err := os.ReadFile(filepath.Join("examples", "nexmark", q+".yaml"))
		if err != nil {
			return fmt.Errorf("nexmark %s (run from the repository root): %w", q, err)
		}
		data, err = spec.ExpandEnv(data, func(k string) (string, bool) {
			switch k {
			case "COUNT":
				return strconv.FormatInt(*nexCount, 10), true
			case "PARALLELISM":
				return "1", true
			}
			return "", false
		})
		if err != nil {
			return fmt.Errorf("nexmark %s: %w", q, err)
		}
		var perCPU []float64
		for i := 0; i < *runs; i++ {
			r, err := e.runJob(string(data), *nexCount)
			if err != nil {
				return fmt.Errorf("nexmark %s run %d: %w", q, i, err)
			}
			fmt.Printf("bench: nexmark %s run %d: %.0f events/s, %.0f events/cpu_s\n", q, i, r.eps, r.perCPU)
			perCPU = append(perCPU, r.perCPU)
		}
		m := median(perCPU)
		fmt.Printf("BENCH nexmark_%s_events_per_cpu_s %.0f events/cpu_s\n", q, m)
		fmt.Printf("BENCH nexmark_%s_vs_flink_per_core %.2f x\n", q, m/flinkPerCore[q])
	}
	return nil
}
