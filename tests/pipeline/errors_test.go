package pipeline

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// An expression that fails at run time (dividing by a string) fails the
// job under the default policy, and the cause names the node, the record
// and the expression.
func TestEvalErrorFailsJob(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2})
	id := c.Submit(t, spec(`name: eval-error
restart: {strategy: none}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 100}}
  - name: label
    map: {s: "id == 42 ? 'x' : 1"}
  - name: divide
    map: {q: id / s}
  - name: sink
    sink: {file: {path: {{out}}}}
`, "{{out}}", filepath.Join(t.TempDir(), "out")))
	j := c.WaitState(t, id, "FAILED", 30*time.Second)
	t.Logf("failure cause: %s", j.FailureCause)
	for _, want := range []string{"node divide", "record 42", "id / s"} {
		if !strings.Contains(j.FailureCause, want) {
			t.Errorf("failure cause %q does not name %q", j.FailureCause, want)
		}
	}
	if n := strings.Count(j.FailureCause, "node divide"); n != 1 {
		t.Errorf("failure cause names the node %d times: %q", n, j.FailureCause)
	}
}

// The same failure with on_error: skip on the node drops exactly the bad
// record, counts it, and the job finishes.
func TestEvalErrorSkipped(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: eval-skip
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 100}}
  - name: label
    map: {s: "id == 42 ? 'x' : 1"}
  - name: divide
    on_error: skip
    select: {id: id, q: id * 2 / s}
  - name: sink
    sink: {file: {path: {{out}}}}
`, "{{out}}", out))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	var want []string
	for n := int64(0); n < 100; n++ {
		if n != 42 {
			want = append(want, line(map[string]any{"id": n, "q": float64(2 * n)}))
		}
	}
	equalLines(t, "output", readLines(t, out), want)
	if v := c.JobCounter(t, "weir_job_skipped_invalid_total", id, j.Vertices[0].ID); v != 1 {
		t.Errorf("skipped %v, want 1", v)
	}
}

// dead_letter on an operator node: the failed record is written to the
// dead-letter topic as JSON of its fields, with the reason, the node and the
// record's origin in headers; every other record goes on.
func TestEvalErrorDeadLettered(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2, Kafka: true})
	c.CreateTopic(t, "bad-records", 1)
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: eval-dlq
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 100}}
  - name: label
    map: {s: "id == 42 ? 'x' : 1"}
  - name: divide
    on_error: {action: dead_letter, topic: bad-records, brokers: ["${KAFKA_BROKERS}"]}
    select: {id: id, q: id * 2 / s}
  - name: sink
    sink: {file: {path: {{out}}}}
`, "{{out}}", out))
	c.WaitState(t, id, "FINISHED", 30*time.Second)
	if n := len(readLines(t, out)); n != 99 {
		t.Errorf("%d records written, want 99", n)
	}
	dl := c.ReadTopic(t, "bad-records")
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1: %+v", len(dl), dl)
	}
	m := dl[0]
	want := fmt.Sprintf(`{"id":42,"ts":%d,"s":"x"}`, t0+42) // the record as it reached the failing node, fields in order
	if string(m.Value) != want || m.Headers["weir.node"] != "divide" || m.Headers["weir.origin"] != "source gen record 42" ||
		!strings.Contains(m.Headers["weir.error"], "id * 2 / s") {
		t.Fatalf("dead letter %s headers %v, want value %s", m.Value, m.Headers, want)
	}
}
