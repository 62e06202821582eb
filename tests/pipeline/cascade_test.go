package pipeline

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Windows of window results: per-key counts every 10 ms are re-keyed and
// summed per 50 ms, which needs the first window's results to carry event
// time and watermarks downstream.
func TestCascadedWindows(t *testing.T) {
	const count = 500
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 6})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: cascade
parallelism: 2
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: {{count}}}
      event_time: {field: ts}
  - name: by-k
    key_by: {expr: id % 4, as: k}
  - name: fine
    window:
      tumbling: 10ms
      aggregates: {n: count()}
  - name: all
    key_by: {expr: "'all'", as: scope}
  - name: coarse
    window:
      tumbling: 50ms
      aggregates: {n: sum(n), windows: count(), keys_max: max(k)}
  - name: sink
    parallelism: 1
    sink: {file: {path: {{out}}}}
`, "{{out}}", out, "{{count}}", fmt.Sprint(count)))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	var want []string
	for s := int64(0); s < count; s += 50 {
		want = append(want, line(map[string]any{"scope": "all", "window_start": t0 + s, "window_end": t0 + s + 50,
			"n": int64(50), "windows": int64(20), "keys_max": int64(3)}))
	}
	sameLines(t, "coarse windows\n"+cluster.Describe(j), readLines(t, out), want)
	// A window result's fields: key, window bounds, aggregates in order.
	if exact := readExactLines(t, out); len(exact) == 0 || !strings.HasPrefix(exact[0], `{"scope":"all","window_start":`) || !strings.HasSuffix(exact[0], `"n":50,"windows":20,"keys_max":3}`) {
		t.Errorf("field order of a window result: %q", exact)
	}
}

// Sliding windows whose slide does not divide the size, aligned to the
// epoch (so the first window of a record may start before the stream).
func TestSlidingShapes(t *testing.T) {
	const count = 100
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4})
	for _, shape := range []struct{ size, slide int64 }{{25, 10}, {30, 7}} {
		t.Run(fmt.Sprintf("size%d-slide%d", shape.size, shape.slide), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			id := c.Submit(t, spec(`name: sliding
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: {{count}}}
      event_time: {field: ts}
  - name: by-k
    key_by: {expr: id % 2, as: k}
  - name: win
    parallelism: 2
    window:
      sliding: {size: {{size}}ms, slide: {{slide}}ms}
      aggregates: {n: count(), lo: min(id), hi: max(id)}
  - name: sink
    parallelism: 2
    sink: {file: {path: {{out}}}}
`, "{{out}}", out, "{{count}}", fmt.Sprint(count), "{{size}}", fmt.Sprint(shape.size), "{{slide}}", fmt.Sprint(shape.slide)))
			j := c.WaitState(t, id, "FINISHED", 30*time.Second)
			type wk struct{ k, start int64 }
			type agg struct{ n, lo, hi int64 }
			model := map[wk]*agg{}
			for n := int64(0); n < count; n++ {
				ts := t0 + n
				for s := ts - ts%shape.slide; s+shape.size > ts; s -= shape.slide {
					k := wk{n % 2, s}
					if model[k] == nil {
						model[k] = &agg{lo: n, hi: n}
					}
					a := model[k]
					a.n++
					a.lo, a.hi = min(a.lo, n), max(a.hi, n)
				}
			}
			var want []string
			for k, a := range model {
				want = append(want, line(map[string]any{"k": k.k, "window_start": k.start, "window_end": k.start + shape.size, "n": a.n, "lo": a.lo, "hi": a.hi}))
			}
			sameLines(t, "windows\n"+cluster.Describe(j), concat(readSubtasks(t, out, 2)), want)
		})
	}
}
