package pipeline

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Keys of every allowed type (null, bool, int, float, string) cross the
// exchange between workers and come back out of the window as they went in.
func TestKeyTypes(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: keys
parallelism: 2
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: 50}
      event_time: {field: ts}
  - name: by-k
    key_by: {expr: "[nil, true, 7, 2.5, 'seven'][id % 5]", as: k}
  - name: win
    window:
      tumbling: 1h
      aggregates: {n: count(), s: sum(id)}
  - name: sink
    sink: {file: {path: {{out}}}}
`, "{{out}}", out))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	start := t0 - t0%3600000
	var want []string
	for i, k := range []any{nil, true, int64(7), 2.5, "seven"} {
		s := int64(0)
		for n := int64(i); n < 50; n += 5 {
			s += n
		}
		want = append(want, line(map[string]any{"k": k, "window_start": start, "window_end": start + 3600000, "n": int64(10), "s": s}))
	}
	sameLines(t, "windows\n"+cluster.Describe(j), concat(readSubtasks(t, out, 2)), want)
}
