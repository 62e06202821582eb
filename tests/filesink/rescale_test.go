package filesink

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// stage is one job of a rescale chain: its parallelism, and whether it
// waits for a completed checkpoint before it is stopped with a savepoint.
type stage struct {
	par        int
	checkpoint bool
}

// rescaleThroughSavepoints submits spec once per stage, each resuming from
// the savepoint the one before stopped with; every job but the last is
// stopped with a savepoint once running, and the last runs to FINISHED.
func rescaleThroughSavepoints(t *testing.T, c *proc.Cluster, spec string, stages ...stage) {
	t.Helper()
	from := ""
	for i, s := range stages {
		args := []string{spec, "-p", fmt.Sprint(s.par)}
		if from != "" {
			args = append(args, "--from-savepoint", from)
		}
		id := c.Submit(args...)
		j := c.WaitRunning(id, 1, 60*time.Second)
		if i == len(stages)-1 {
			if end := c.WaitEnded(id, 3*time.Minute); end.State != "FINISHED" {
				t.Fatalf("job %s ended %s: %s", id, end.State, end.FailureCause)
			}
			return
		}
		if s.checkpoint {
			c.WaitCheckpoint(id, j.Attempt, 0, 60*time.Second)
		}
		o, code := c.Weir("savepoint", id, "--stop", "--wait")
		if code != 0 {
			t.Fatalf("savepoint --stop --wait of %s: exit %d\n%s", id, code, o)
		}
		from = strings.TrimSpace(o)
		if end := c.WaitEnded(id, time.Minute); end.State != "FINISHED" {
			t.Fatalf("stopped job %s ended %s: %s", id, end.State, end.FailureCause)
		}
		t.Logf("job %d at parallelism %d stopped with savepoint %s", i, s.par, from)
	}
}
