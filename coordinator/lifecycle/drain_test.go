package lifecycle

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/restart"
)

func finishAll(t *testing.T, j *Job, now time.Time) {
	t.Helper()
	for _, k := range []TaskKey{{"src", 0}, {"src", 1}, {"sink", 0}} {
		mustHandle(t, j, TaskUpdate{Now: now, Task: k, Attempt: j.Attempt, State: TaskFinished})
	}
}

// TestDrainRestart: a job that stopped for a drain restarts at once,
// without asking its strategy (which here would refuse), instead of
// finishing; without a drain the same reports finish it.
func TestDrainRestart(t *testing.T) {
	j := newJob(t)
	j.Strategy = restart.None{}
	if _, err := j.Handle(DrainStop{Now: t0, Worker: "w1"}); err == nil {
		t.Fatal("DrainStop accepted while SCHEDULING")
	}
	deploy(t, j)
	runAll(t, j, at(time.Second))
	mustHandle(t, j, DrainStop{Now: at(2 * time.Second), Worker: "w1"})
	mustHandle(t, j, CheckpointCompleted{Now: at(2 * time.Second), ID: 4}) // a periodic one
	mustHandle(t, j, CheckpointCompleted{Now: at(2 * time.Second), ID: 5, Stop: true})
	if j.Draining() != "w1" {
		t.Fatalf("draining %q", j.Draining())
	}
	if _, err := j.Handle(DrainStop{Now: at(2 * time.Second), Worker: "w2"}); err == nil {
		t.Fatal("a second DrainStop accepted")
	}
	finishAll(t, j, at(3*time.Second))
	if j.State != Restarting || !j.RestartAt.Equal(at(3*time.Second)) || j.Draining() != "" {
		t.Fatalf("state %s restart at %s", j.State, j.RestartAt)
	}
	r := j.Restarts[0]
	if len(j.Restarts) != 1 || r.Reason != RestartDrain || r.Worker != "w1" || !strings.Contains(r.Cause, "draining") ||
		!r.DetectedAt.Equal(at(2*time.Second)) || !r.CancelledAt.Equal(at(3*time.Second)) || r.GaveUp {
		t.Fatalf("restart %+v", r)
	}
	mustHandle(t, j, Tick{Now: at(3 * time.Second)})
	if j.State != Scheduling {
		t.Fatalf("state %s after the tick", j.State)
	}

	// Subtasks that finish before the stop checkpoint completed ended their
	// input: the job finishes.
	j = newJob(t)
	deploy(t, j)
	runAll(t, j, at(time.Second))
	mustHandle(t, j, DrainStop{Now: at(2 * time.Second), Worker: "w1"})
	mustHandle(t, j, CheckpointCompleted{Now: at(2 * time.Second), ID: 4})
	finishAll(t, j, at(3*time.Second))
	if j.State != Finished || len(j.Restarts) != 0 {
		t.Fatalf("state %s restarts %d", j.State, len(j.Restarts))
	}

	// An abandoned drain finishes as usual.
	j = newJob(t)
	deploy(t, j)
	runAll(t, j, at(time.Second))
	mustHandle(t, j, DrainStop{Now: at(2 * time.Second), Worker: "w1"})
	mustHandle(t, j, DrainAbandoned{Now: at(3 * time.Second)})
	finishAll(t, j, at(4*time.Second))
	if j.State != Finished || len(j.Restarts) != 0 {
		t.Fatalf("state %s restarts %d", j.State, len(j.Restarts))
	}

	// A failure during a drain is a failure.
	j = newJob(t)
	j.Strategy = restart.None{}
	deploy(t, j)
	runAll(t, j, at(time.Second))
	mustHandle(t, j, DrainStop{Now: at(2 * time.Second), Worker: "w1"})
	mustHandle(t, j, TaskUpdate{Now: at(3 * time.Second), Task: TaskKey{"src", 0}, Attempt: 1, State: TaskFailed, Error: "boom"})
	mustHandle(t, j, TaskUpdate{Now: at(3 * time.Second), Task: TaskKey{"src", 1}, Attempt: 1, State: TaskCanceled})
	mustHandle(t, j, TaskUpdate{Now: at(3 * time.Second), Task: TaskKey{"sink", 0}, Attempt: 1, State: TaskCanceled})
	if j.State != Failed || j.Restarts[0].Reason != RestartFailure || j.Draining() != "" {
		t.Fatalf("state %s restarts %+v", j.State, j.Restarts[0])
	}
}
