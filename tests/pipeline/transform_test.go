package pipeline

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Datagen → map → filter → select → file sink, two subtasks chained end to
// end: every subtask writes exactly its share of the records, in order, with
// the computed fields; the job ends FINISHED.
func TestTransforms(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: transforms
parallelism: 2
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: 120}
  - name: compute
    map:
      sq: id * id
      tag: "'n' + string(id)"
  - name: keep
    filter: id % 3 != 0
  - name: shape
    select:
      id: id
      sq: sq
      tag: tag
      big: sq > 1000
      ts_off: ts - {{t0}}
  - name: sink
    sink:
      file: {path: {{out}}}
`, "{{out}}", out, "{{t0}}", fmt.Sprint(t0)))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	if len(j.Vertices) != 1 {
		t.Fatalf("want one chained vertex\n%s", cluster.Describe(j))
	}
	got := readSubtasks(t, out, 2)
	for sub := range 2 {
		var want []string
		for n := int64(sub); n < 120; n += 2 {
			if n%3 == 0 {
				continue
			}
			want = append(want, line(map[string]any{"id": n, "sq": n * n, "tag": fmt.Sprintf("n%d", n), "big": n*n > 1000, "ts_off": n}))
		}
		equalLines(t, fmt.Sprintf("subtask %d", sub), got[sub], want)
	}
	// The sink writes fields in select's order (docs/spec.md, "Field
	// order").
	if exact := readExactLines(t, out+"-0"); len(exact) == 0 || exact[0] != `{"id":2,"sq":4,"tag":"n2","big":false,"ts_off":2}` {
		t.Errorf("first line as written: %q", exact[:min(1, len(exact))])
	}
}
