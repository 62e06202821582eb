package pipeline

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Two sources, each reshaped, unioned by a key_by with two inputs, into a
// sliding window computing count/sum/min/max/avg, whose output fans out to
// two sinks. Both sinks get exactly the model's results.
func TestUnionSlidingFanOut(t *testing.T) {
	const count = 90
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 5})
	dir := t.TempDir()
	outA, outB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	id := c.Submit(t, spec(`name: dag
pipeline:
  - name: src-a
    parallelism: 2
    source:
      datagen: {profile: sequence, count: {{count}}}
      event_time: {field: ts}
  - name: a
    parallelism: 2
    select: {k: id % 3, v: id, ts: ts}
  - name: src-b
    source:
      datagen: {profile: sequence, count: {{count}}, seed: 7}
      event_time: {field: ts}
  - name: b
    select: {k: id % 3, v: 1000 + id * 10, ts: ts}
  - name: by-k
    inputs: [a, b]
    parallelism: 2
    key_by: k
  - name: slide
    parallelism: 2
    window:
      sliding: {size: 20ms, slide: 10ms}
      aggregates:
        cnt: count()
        total: sum(v)
        lo: min(v)
        hi: max(v)
        mean: avg(v)
  - name: sink-a
    inputs: [slide]
    sink: {file: {path: {{outA}}}}
  - name: sink-b
    inputs: [slide]
    parallelism: 2
    sink: {file: {path: {{outB}}}}
`, "{{outA}}", outA, "{{outB}}", outB, "{{count}}", fmt.Sprint(count)))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)

	type agg struct{ cnt, sum, lo, hi int64 }
	type wk struct{ k, start int64 }
	model := map[wk]*agg{}
	add := func(k, v, ts int64) {
		// Windows [s, s+20) with s a multiple of 10 containing ts.
		for s := ts - ts%10; s > ts-20; s -= 10 {
			a := model[wk{k, s}]
			if a == nil {
				a = &agg{lo: v, hi: v}
				model[wk{k, s}] = a
			}
			a.cnt++
			a.sum += v
			a.lo, a.hi = min(a.lo, v), max(a.hi, v)
		}
	}
	for n := int64(0); n < count; n++ {
		add(n%3, n, t0+n)
		add(n%3, 1000+n*10, t0+n)
	}
	var want []string
	for k, a := range model {
		want = append(want, line(map[string]any{"k": k.k, "window_start": k.start, "window_end": k.start + 20,
			"cnt": a.cnt, "total": a.sum, "lo": a.lo, "hi": a.hi, "mean": float64(a.sum) / float64(a.cnt)}))
	}
	sameLines(t, "sink-a\n"+cluster.Describe(j), readLines(t, outA), want)
	sameLines(t, "sink-b", concat(readSubtasks(t, outB, 2)), want)
}
