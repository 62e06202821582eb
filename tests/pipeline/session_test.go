package pipeline

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Session windows through a job: a filter cuts the sequence into bursts
// (ids 0-39 of every 50 kept), so each key (id % 2) has one session per
// burst, its records 2 ms apart (within the 5 ms gap) and 12 ms between
// bursts; two source subtasks interleave, so sessions also merge out of
// order. The results carry the key, window_start, window_end and the
// aggregates in order, like the other windows'.
func TestSessionWindows(t *testing.T) {
	const count, gap = 1000, 5
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 6})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: sessions
parallelism: 2
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: {{count}}}
      event_time: {field: ts}
  - name: bursts
    filter: id % 50 < 40
  - name: by-k
    key_by: {expr: id % 2, as: k}
  - name: visits
    window:
      session: {gap: {{gap}}ms}
      aggregates: {n: count(), lo: min(id), hi: max(id), f: first(id), l: last(id), ids: count_distinct(id)}
  - name: sink
    parallelism: 1
    sink: {file: {path: {{out}}}}
`, "{{out}}", out, "{{count}}", fmt.Sprint(count), "{{gap}}", fmt.Sprint(gap)))
	j := c.WaitState(t, id, "FINISHED", 60*time.Second)
	var want []string
	for b := int64(0); b < count; b += 50 {
		for k := int64(0); k < 2; k++ {
			lo, hi := b+k, b+38+k
			want = append(want, line(map[string]any{"k": k, "window_start": t0 + lo, "window_end": t0 + hi + gap,
				"n": int64(20), "lo": lo, "hi": hi, "f": lo, "l": hi, "ids": int64(20)}))
		}
	}
	sameLines(t, "sessions\n"+cluster.Describe(j), readLines(t, out), want)
	if exact := readExactLines(t, out); len(exact) == 0 || !strings.HasPrefix(exact[0], `{"k":`) || !strings.Contains(exact[0], `,"window_start":`) || !strings.HasSuffix(exact[0], `"ids":20}`) {
		t.Errorf("field order of a session result: %q", exact)
	}
}
