package pipeline

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

const unboundedJob = `name: unbounded
parallelism: 2
restart: {strategy: none}
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, rate: 2000}
      event_time: {field: ts}
  - name: by-k
    key_by: id % 5
  - name: win
    window:
      tumbling: 100ms
      aggregates: {n: count()}
  - name: sink
    sink: {file: {path: {{out}}}}
`

func slotsUsed(t *testing.T, c *cluster.Cluster) int {
	ov, err := c.Client().Overview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ov.SlotsUsed
}

// A running streaming job (source, exchange, window, sink over two workers)
// is cancelled: every subtask ends CANCELED and the slots are free again.
func TestCancelRunning(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2})
	id := c.Submit(t, spec(unboundedJob, "{{out}}", filepath.Join(t.TempDir(), "out")))
	c.WaitState(t, id, "RUNNING", 10*time.Second)
	cluster.Eventually(t, 10*time.Second, func() bool {
		for _, v := range c.Job(t, id).Vertices {
			for _, s := range v.Subtasks {
				if v.ID != "gen" && s.RecordsIn == 0 {
					return false
				}
			}
		}
		return true
	}, "records to reach every subtask")
	c.Cancel(t, id)
	j := c.WaitState(t, id, "CANCELLED", 10*time.Second)
	for _, v := range j.Vertices {
		for _, s := range v.Subtasks {
			if s.State != "CANCELED" {
				t.Errorf("subtask %s[%d] is %s\n%s", v.ID, s.Index, s.State, cluster.Describe(j))
			}
		}
	}
	cluster.Eventually(t, 10*time.Second, func() bool { return slotsUsed(t, c) == 0 }, "slots to be released")
}

// Killing a worker under a running job fails the job and cancels its subtasks on the other worker; a job
// submitted afterwards runs on the survivor.
func TestWorkerLoss(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2})
	id := c.Submit(t, spec(unboundedJob, "{{out}}", filepath.Join(t.TempDir(), "out")))
	c.WaitState(t, id, "RUNNING", 10*time.Second)
	c.KillWorker(0)
	j := c.WaitState(t, id, "FAILED", 20*time.Second)
	// The first failure is either the coordinator seeing the session break
	// or a task on w2 seeing its data channel from w1 break, whichever is
	// reported first.
	if !strings.Contains(j.FailureCause, "worker w1 lost") && !strings.Contains(j.FailureCause, "channel broke") {
		t.Fatalf("cause %q", j.FailureCause)
	}
	cluster.Eventually(t, 10*time.Second, func() bool { return slotsUsed(t, c) == 0 }, "slots to be released")
	out := filepath.Join(t.TempDir(), "after")
	id = c.Submit(t, spec(`name: after
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 10}}
  - name: sink
    sink: {file: {path: {{out}}}}
`, "{{out}}", out))
	j = c.WaitState(t, id, "FINISHED", 20*time.Second)
	if w := j.Vertices[0].Subtasks[0].Worker; w != "w2" {
		t.Fatalf("ran on %q", w)
	}
	if n := len(readLines(t, out)); n != 10 {
		t.Fatalf("%d lines", n)
	}
}
