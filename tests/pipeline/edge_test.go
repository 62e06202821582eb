package pipeline

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Fewer records than source subtasks: the subtasks with nothing to emit end
// at once without a watermark, and must not hold back the window.
func TestSourceSubtasksWithoutRecords(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: sparse
pipeline:
  - name: gen
    parallelism: 4
    source:
      datagen: {profile: sequence, count: 2}
      event_time: {field: ts}
  - name: by-k
    parallelism: 4
    key_by: "'all'"
  - name: win
    window:
      tumbling: 1m
      aggregates: {n: count()}
  - name: sink
    sink: {file: {path: {{out}}}}
  - name: fmt
    inputs: [win]
    select: {value: "'n=' + string(n)"}
  - name: raw
    sink: {file: {path: {{out}}-raw, format: raw}}
`, "{{out}}", out))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	equalLines(t, "raw sink\n"+cluster.Describe(j), readLines(t, out+"-raw"), []string{"n=2"})
	equalLines(t, "json sink", readLines(t, out), []string{line(map[string]any{"key": "all", "window_start": t0 - t0%60000, "window_end": t0 - t0%60000 + 60000, "n": int64(2)})})
}

// flat_map explode of a list expression, a named union of three inputs, and
// a raw-format sink.
func TestExplodeUnionRaw(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: explode
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 5}}
  - name: twice
    flat_map: {explode: "[id, id * 10]", as: x}
  - name: odd
    inputs: [gen]
    filter: id % 2 == 1
  - name: odd-x
    select: {x: -id}
  - name: also
    source: {datagen: {profile: sequence, count: 3}}
  - name: also-x
    select: {x: 100 + id}
  - name: all
    inputs: [twice, odd-x, also-x]
    union: {}
  - name: text
    select: {value: "'x=' + string(x)"}
  - name: sink
    sink: {file: {path: {{out}}, format: raw}}
`, "{{out}}", out))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	var want []string
	for n := 0; n < 5; n++ {
		want = append(want, fmt.Sprintf("x=%d", n), fmt.Sprintf("x=%d", n*10))
		if n%2 == 1 {
			want = append(want, fmt.Sprintf("x=%d", -n))
		}
	}
	want = append(want, "x=100", "x=101", "x=102")
	sameLines(t, "output\n"+cluster.Describe(j), readLines(t, out), want)
}
