package lifecycle

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/restart"
)

func at(d time.Duration) time.Time { return t0.Add(d) }

func runAll(t *testing.T, j *Job, now time.Time) {
	t.Helper()
	for _, k := range []TaskKey{{"src", 0}, {"src", 1}, {"sink", 0}} {
		mustHandle(t, j, TaskUpdate{Now: now, Task: k, Attempt: j.Attempt, State: TaskRunning})
	}
}

func TestRestartTimeline(t *testing.T) {
	j := newJob(t)
	j.Strategy = &restart.Fixed{Attempts: 1, Delay: 5 * time.Second}
	j.Checkpointing = true
	deploy(t, j)
	runAll(t, j, at(time.Second))
	if j.State != Running || !j.RunningSince.Equal(at(time.Second)) {
		t.Fatalf("state %s", j.State)
	}
	// w1 is lost: its tasks are lost, the one on w2 is cancelled.
	acts := mustHandle(t, j, WorkerLost{Now: at(10 * time.Second), Worker: "w1", Reason: "heartbeat timeout"})
	if !reflect.DeepEqual(acts, []Action{CancelTask{TaskKey{"src", 1}, "w2", 1}}) || j.State != Failing {
		t.Fatalf("acts %v state %s", acts, j.State)
	}
	mustHandle(t, j, TaskUpdate{Now: at(11 * time.Second), Task: TaskKey{"src", 1}, Attempt: 1, State: TaskCanceled})
	if j.State != Restarting || !j.RestartAt.Equal(at(16*time.Second)) || !strings.Contains(j.Message, "restarting in 5s") {
		t.Fatalf("state %s restart at %s message %q", j.State, j.RestartAt, j.Message)
	}
	// Reports of the old attempt change nothing now.
	mustHandle(t, j, TaskUpdate{Now: at(12 * time.Second), Task: TaskKey{"src", 1}, Attempt: 1, State: TaskFailed, Error: "late"})
	mustHandle(t, j, Tick{Now: at(15 * time.Second)})
	if j.State != Restarting {
		t.Fatalf("state %s before the delay", j.State)
	}
	mustHandle(t, j, Tick{Now: at(16 * time.Second)})
	if j.State != Scheduling || j.Cause != "" || j.Task(TaskKey{"src", 0}).State != TaskPending || j.Task(TaskKey{"src", 0}).Worker != "" {
		t.Fatalf("state %s cause %q task %+v", j.State, j.Cause, j.Task(TaskKey{"src", 0}))
	}
	rp := &RestorePoint{CheckpointID: 7, URI: "file:///cp/j1/chk-7/_metadata", Fallback: "chk-8: corrupt"}
	acts = mustHandle(t, j, Placed{Now: at(17 * time.Second), Workers: map[TaskKey]string{{"src", 0}: "w2", {"src", 1}: "w3", {"sink", 0}: "w2"}, Restore: rp})
	if len(acts) != 3 || acts[0].(DeployTask).Attempt != 2 || j.Attempt != 2 || j.Restore != rp {
		t.Fatalf("acts %v", acts)
	}
	runAll(t, j, at(18*time.Second))
	mustHandle(t, j, CheckpointCompleted{Now: at(20 * time.Second), ID: 9})
	mustHandle(t, j, CheckpointCompleted{Now: at(30 * time.Second), ID: 10})
	want := &Restart{Reason: RestartFailure, FailedAttempt: 1, Attempt: 2, Cause: "worker w1 lost: heartbeat timeout", Worker: "w1", Delay: 5 * time.Second,
		RestoredFrom: 7, RestoredURI: rp.URI, Fallback: rp.Fallback,
		DetectedAt: at(10 * time.Second), CancelledAt: at(11 * time.Second), ScheduledAt: at(17 * time.Second),
		RestoredAt: at(18 * time.Second), RunningAt: at(20 * time.Second)}
	if len(j.Restarts) != 1 || !reflect.DeepEqual(j.Restarts[0], want) {
		t.Fatalf("restart record\n got %+v\nwant %+v", j.Restarts[0], want)
	}
	// The second failure exhausts the fixed strategy.
	report(t, j, TaskKey{"sink", 0}, TaskFailed, "boom")
	if j.State != Failing {
		t.Fatalf("state %s", j.State)
	}
	report(t, j, TaskKey{"src", 0}, TaskCanceled, "")
	report(t, j, TaskKey{"src", 1}, TaskCanceled, "")
	if j.State != Failed || !strings.Contains(j.Cause, "boom") || !strings.Contains(j.Cause, "not restarted: fixed: 1 of 1") {
		t.Fatalf("state %s cause %q", j.State, j.Cause)
	}
	if r := j.Restarts[1]; !r.GaveUp || r.Task != "sink[0]" || r.Worker != "w2" || r.ScheduledAt != (time.Time{}) {
		t.Fatalf("record %+v", r)
	}
}

func TestRestartWithoutCheckpointing(t *testing.T) {
	j := newJob(t)
	j.Strategy = &restart.Fixed{Attempts: 5}
	deploy(t, j)
	report(t, j, TaskKey{"src", 0}, TaskFailed, "x")
	report(t, j, TaskKey{"src", 1}, TaskCanceled, "")
	report(t, j, TaskKey{"sink", 0}, TaskCanceled, "")
	if j.State != Restarting {
		t.Fatalf("state %s", j.State)
	}
	mustHandle(t, j, Tick{Now: t0}) // zero delay
	mustHandle(t, j, Placed{Now: at(time.Second), Workers: placement})
	runAll(t, j, at(2*time.Second))
	if r := j.Restarts[0]; !r.RunningAt.Equal(at(2*time.Second)) || r.RestoredFrom != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestFailEventAndCancelWhileRestarting(t *testing.T) {
	j := newJob(t)
	j.Strategy = &restart.Fixed{Attempts: 5, Delay: time.Minute}
	deploy(t, j)
	runAll(t, j, t0)
	acts := mustHandle(t, j, Fail{Now: t0, Cause: "checkpoint 3 failed: timeout"})
	if len(acts) != 3 || j.State != Failing {
		t.Fatalf("acts %v state %s", acts, j.State)
	}
	mustHandle(t, j, WorkerLost{Now: t0, Worker: "w1"})
	mustHandle(t, j, WorkerLost{Now: t0, Worker: "w2"})
	if j.State != Restarting {
		t.Fatalf("state %s", j.State)
	}
	if acts, _ := j.Handle(Fail{Now: t0, Cause: "again"}); acts != nil || j.State != Restarting {
		t.Fatal("Fail while restarting must be ignored")
	}
	mustHandle(t, j, Cancel{Now: t0})
	if j.State != Cancelled {
		t.Fatalf("state %s", j.State)
	}
}
