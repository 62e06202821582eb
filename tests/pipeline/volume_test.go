package pipeline

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Enough records to fill many exchange batches and run out of credit, over
// two workers: a keyed window of 100k records, exact per key and window.
// Two copies of the job run at once on the same cluster, so their channels
// must stay apart.
func TestVolumeConcurrentJobs(t *testing.T) {
	const count, keys = 100_000, 97
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 6})
	dir := t.TempDir()
	outs := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
	var ids []string
	for i, out := range outs {
		ids = append(ids, c.Submit(t, spec(`name: volume-{{i}}
parallelism: 2
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: {{count}}}
      event_time: {field: ts}
  - name: by-k
    key_by: {expr: "id % {{keys}} + {{i}}", as: k}
  - name: win
    window:
      tumbling: 1s
      aggregates: {n: count(), s: sum(id)}
  - name: sink
    sink: {file: {path: {{out}}}}
`, "{{i}}", fmt.Sprint(i*1000), "{{count}}", fmt.Sprint(count), "{{keys}}", fmt.Sprint(keys), "{{out}}", out)))
	}
	type wk struct{ k, start int64 }
	type agg struct{ n, s int64 }
	for i, id := range ids {
		j := c.WaitState(t, id, "FINISHED", 50*time.Second)
		model := map[wk]*agg{}
		for n := int64(0); n < count; n++ {
			ts := t0 + n
			k := wk{n%keys + int64(i*1000), ts - ts%1000}
			if model[k] == nil {
				model[k] = &agg{}
			}
			model[k].n++
			model[k].s += n
		}
		var want []string
		for k, a := range model {
			want = append(want, line(map[string]any{"k": k.k, "window_start": k.start, "window_end": k.start + 1000, "n": a.n, "s": a.s}))
		}
		sameLines(t, fmt.Sprintf("job %d\n%s", i, cluster.Describe(j)), concat(readSubtasks(t, outs[i], 2)), want)
	}
}
