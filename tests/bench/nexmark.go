package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/weir-stream/weir/connectors/nexmark"
	"github.com/weir-stream/weir/dataflow/spec"
)

var nexCount = flag.Int64("nexmark-events", 5_000_000, "events in each nexmark query benchmark")

// generatorPerCPU is the baseline of the nexmark section, measured in the
// same run: the bare generator making every event of the stream in a Go
// loop (no records, no engine), events per CPU second of this process.
// A query's ratio to it is what the engine costs on top of the events'
// own making. (Flink's published figures come from other machines; they
// are quoted in docs/bench.md, never divided by.)
func generatorPerCPU(n int64) float64 {
	g := nexmark.New(nexmark.Config{Seed: 1})
	var sink int64
	c0 := selfCPU()
	for i := range n {
		switch nexmark.KindOf(i) {
		case nexmark.KindPerson:
			sink += g.Person(i).ID
		case nexmark.KindAuction:
			sink += g.Auction(i).ID
		default:
			sink += g.Bid(i).Price
		}
	}
	d := float64(selfCPU()-c0) / 1e9
	if sink == 42 { // keep the loop's results alive
		fmt.Print("")
	}
	return float64(n) / d
}

// flinkPerCore is Flink 1.13's published throughput per core of each
// Nexmark query (nexmark/nexmark's README: 8 workers with RocksDB state
// and 3-minute checkpoints, events/s divided by the cores used). It is
// another machine and setup: the _vs_flink_per_core lines print it beside
// weir's figure for orientation, and docs/bench.md says how the setups
// differ; the ratio a run is judged by is the one to the generator.
var flinkPerCore = map[string]float64{
	"q0": 155e3, "q1": 158e3, "q2": 175e3, "q3": 152e3, "q4": 34.3e3, "q5": 22.1e3,
	"q7": 12.3e3, "q8": 146e3, "q9": 14.2e3, "q11": 39.7e3, "q12": 75.7e3,
}

// benchNexmark runs each query of examples/nexmark over the nexmark
// datagen profile at parallelism 1 into a discard sink and reports events
// per CPU second of the worker, and the ratio to the bare generator
// measured in the same run, and beside Flink's published per-core figure.
func (e *env) benchNexmark() error {
	var base []float64
	for i := 0; i < *runs; i++ {
		base = append(base, generatorPerCPU(*nexCount))
	}
	gen := median(base)
	fmt.Printf("BENCH nexmark_generator_events_per_cpu_s %.0f events/cpu_s\n", gen)
	for _, q := range []string{"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9", "q11", "q12"} {
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
		fmt.Printf("BENCH nexmark_%s_vs_generator_ratio %.2f\n", q, m/gen)
		if f, ok := flinkPerCore[q]; ok {
			fmt.Printf("BENCH nexmark_%s_vs_flink_per_core %.2f x (weir %.0f events/cpu_s at parallelism 1, Flink 1.13 %.0f events/s/core)\n", q, m/f, m, f)
		}
	}
	return nil
}
