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

// benchNexmark runs each query of examples/nexmark over the nexmark
// datagen profile at parallelism 1 into a discard sink and reports events
// per CPU second of the worker, and the ratio to the bare generator
// measured in the same run.
func (e *env) benchNexmark() error {
	var base []float64
	for i := 0; i < *runs; i++ {
		base = append(base, generatorPerCPU(*nexCount))
	}
	gen := median(base)
	fmt.Printf("BENCH nexmark_generator_events_per_cpu_s %.0f events/cpu_s\n", gen)
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
		fmt.Printf("BENCH nexmark_%s_vs_generator_ratio %.2f\n", q, m/gen)
	}
	return nil
}
