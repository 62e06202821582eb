package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var pairRuns = flag.Int("pair-runs", 3, "runs of ip-visits with and without checkpoints side by side for checkpoint_overhead_concurrent_pct")

// benchCheckpointPairs runs ip-visits with and without 1 s checkpoints at
// the same time, on the same worker and the same input topic, and compares
// their rates while both run. Whatever else loads the machine then loads
// both jobs alike, which runs one after the other on a shared machine
// cannot promise. The rates come from the worker's /metrics (records out
// of each job's source vertex, live counters), scraped every 100 ms, over
// the stretch where the faster job went from 10 % to 90 % of its input, so
// that start-up and the end where one job runs alone are left out.
func (e *env) benchCheckpointPairs() error {
	ctx := context.Background()
	ws, err := e.api.Workers(ctx)
	if err != nil {
		return err
	}
	metricsURL := ""
	for _, w := range ws {
		if w.ID == "bench-worker" {
			metricsURL = "http://" + w.HTTPAddr + "/metrics"
		}
	}
	if metricsURL == "" {
		return fmt.Errorf("no bench-worker among %d workers", len(ws))
	}
	var losses []float64
	completed := 0
	for run := 0; run < *pairRuns; run++ {
		plainSpec := ipVisitsBounded(e.kafka, fmt.Sprintf("ip-visits-pair-plain-%d", run), "")
		ckptSpec := ipVisitsBounded(e.kafka, fmt.Sprintf("ip-visits-pair-ckpt-%d", run), e.checkpointStorage())
		var plain, ckpt string
		// Alternate which job is submitted first.
		if run%2 == 0 {
			if plain, err = e.api.Submit(ctx, []byte(plainSpec)); err == nil {
				ckpt, err = e.api.Submit(ctx, []byte(ckptSpec))
			}
		} else {
			if ckpt, err = e.api.Submit(ctx, []byte(ckptSpec)); err == nil {
				plain, err = e.api.Submit(ctx, []byte(plainSpec))
			}
		}
		if err != nil {
			return err
		}
		type sample struct {
			t    time.Time
			p, c int64
		}
		var samples []sample
		// A finished subtask's series leave /metrics: keep the largest
		// value seen per series.
		seen := map[series]int64{}
		for {
			if err := scrapeSourceOut(metricsURL, seen); err != nil {
				return err
			}
			var p, c int64
			for k, v := range seen {
				switch k.job {
				case plain:
					p += v
				case ckpt:
					c += v
				}
			}
			samples = append(samples, sample{time.Now(), p, c})
			done := 0
			for _, id := range []string{plain, ckpt} {
				j, err := e.api.Job(ctx, id)
				if err != nil {
					return err
				}
				switch j.State {
				case "FINISHED":
					done++
				case "FAILED", "CANCELLED":
					return fmt.Errorf("job %s %s: %s", id, j.State, j.FailureCause)
				}
			}
			if done == 2 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		final := int64(0)
		for _, s := range samples {
			final = max(final, s.p, s.c)
		}
		lo, hi := -1, -1
		for k, s := range samples {
			m := max(s.p, s.c)
			if lo < 0 && m >= final/10 {
				lo = k
			}
			if m <= final*9/10 {
				hi = k
			}
		}
		if lo < 0 || hi <= lo {
			return fmt.Errorf("pair run %d: too few samples (%d) to compare rates", run, len(samples))
		}
		dt := samples[hi].t.Sub(samples[lo].t).Seconds()
		rp := float64(samples[hi].p-samples[lo].p) / dt
		rc := float64(samples[hi].c-samples[lo].c) / dt
		loss := 100 * (1 - rc/rp)
		losses = append(losses, loss)
		cps, err := e.api.Checkpoints(ctx, ckpt)
		if err != nil {
			return err
		}
		completed += cps.Counts.Completed
		fmt.Printf("bench: pair %d: over %.1fs side by side, ip-visits %.0f records/s, with 1s checkpoints %.0f records/s (%.1f%% less; %d checkpoints completed, %d failed)\n",
			run, dt, rp, rc, loss, cps.Counts.Completed, cps.Counts.Failed)
	}
	if len(losses) > 0 {
		fmt.Printf("BENCH checkpoint_overhead_concurrent_pct %.1f %%\n", median(losses))
		fmt.Printf("BENCH checkpoint_overhead_concurrent_checkpoints_completed %d checkpoints\n", completed)
	}
	return nil
}

// series is one subtask of one job.
type series struct {
	job, subtask string
}

// scrapeSourceOut reads a worker's /metrics and raises seen[series] to the
// records out of each access-log (source) subtask.
func scrapeSourceOut(url string, seen map[series]int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	const metric = "weir_task_records_out_total{"
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), metric)
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(line, "} ")
		if !ok || label(labels, "vertex") != "access-log" {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		k := series{label(labels, "job"), label(labels, "subtask")}
		seen[k] = max(seen[k], int64(v))
	}
	return sc.Err()
}

// label returns the value of label name in a Prometheus label list
// (a="x",b="y"); label values here hold no quotes or commas.
func label(labels, name string) string {
	for _, kv := range strings.Split(labels, ",") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
