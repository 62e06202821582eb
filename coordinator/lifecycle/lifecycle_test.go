package lifecycle

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/restart"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestTransitionTable checks every pair of states against the allowed set.
func TestTransitionTable(t *testing.T) {
	allowed := map[[2]State]bool{
		{Created, Scheduling}: true, {Created, Cancelled}: true,
		{Scheduling, Deploying}: true, {Scheduling, Failed}: true, {Scheduling, Cancelled}: true,
		{Deploying, Running}: true, {Deploying, Failing}: true, {Deploying, Failed}: true, {Deploying, Cancelling}: true,
		{Running, Finished}: true, {Running, Failing}: true, {Running, Failed}: true, {Running, Cancelling}: true, {Running, Restarting}: true,
		{Failing, Failed}: true, {Failing, Restarting}: true,
		{Restarting, Scheduling}: true, {Restarting, Failed}: true, {Restarting, Cancelling}: true,
		{Cancelling, Cancelled}: true,
	}
	for _, from := range States {
		for _, to := range States {
			want := allowed[[2]State{from, to}]
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			j := &Job{State: from}
			err := j.set(to, t0)
			if want && err != nil {
				t.Errorf("set %s → %s: %v", from, to, err)
			}
			if !want {
				var te *TransitionError
				if !errors.As(err, &te) || j.State != from {
					t.Errorf("set %s → %s: err %v, state %s; want refused", from, to, err, j.State)
				}
			}
		}
	}
	for _, s := range []State{Finished, Failed, Cancelled} {
		if !s.Terminal() {
			t.Errorf("%s not terminal", s)
		}
	}
}

func newJob(t *testing.T) *Job {
	t.Helper()
	j := New("j1", "demo", []Vertex{{"src", 2}, {"sink", 1}}, t0, time.Minute)
	mustHandle(t, j, Schedule{Now: t0})
	return j
}

func mustHandle(t *testing.T, j *Job, ev Event) []Action {
	t.Helper()
	acts, err := j.Handle(ev)
	if err != nil {
		t.Fatalf("%T: %v", ev, err)
	}
	return acts
}

var placement = map[TaskKey]string{{"src", 0}: "w1", {"src", 1}: "w2", {"sink", 0}: "w1"}

func deploy(t *testing.T, j *Job) []Action {
	t.Helper()
	return mustHandle(t, j, Placed{Now: t0, Workers: placement})
}

func report(t *testing.T, j *Job, k TaskKey, s TaskState, msg string) []Action {
	t.Helper()
	return mustHandle(t, j, TaskUpdate{Now: t0, Task: k, Attempt: j.Attempt, State: s, Error: msg})
}

func TestHappyPath(t *testing.T) {
	j := newJob(t)
	if j.State != Scheduling || j.Slots() != 2 { // slot sharing: the widest vertex
		t.Fatalf("state %s slots %d", j.State, j.Slots())
	}
	acts := deploy(t, j)
	want := []Action{
		DeployTask{TaskKey{"src", 0}, "w1", 1},
		DeployTask{TaskKey{"src", 1}, "w2", 1},
		DeployTask{TaskKey{"sink", 0}, "w1", 1},
	}
	if !reflect.DeepEqual(acts, want) || j.State != Deploying || j.Attempt != 1 {
		t.Fatalf("acts %v state %s attempt %d", acts, j.State, j.Attempt)
	}
	report(t, j, TaskKey{"src", 0}, TaskRunning, "")
	report(t, j, TaskKey{"src", 1}, TaskRunning, "")
	if j.State != Deploying {
		t.Fatalf("state %s before all running", j.State)
	}
	report(t, j, TaskKey{"sink", 0}, TaskRunning, "")
	if j.State != Running || j.StartedAt.IsZero() {
		t.Fatalf("state %s", j.State)
	}
	for _, k := range []TaskKey{{"src", 0}, {"src", 1}, {"sink", 0}} {
		report(t, j, k, TaskFinished, "")
	}
	if j.State != Finished || j.EndedAt.IsZero() {
		t.Fatalf("state %s", j.State)
	}
}

func TestFinishBeforeOthersRun(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	report(t, j, TaskKey{"src", 0}, TaskFinished, "")
	report(t, j, TaskKey{"src", 1}, TaskFinished, "")
	report(t, j, TaskKey{"sink", 0}, TaskFinished, "")
	if j.State != Finished {
		t.Fatalf("state %s", j.State)
	}
}

func TestTaskFailureCancelsOthersThenFails(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	report(t, j, TaskKey{"src", 0}, TaskRunning, "")
	acts := report(t, j, TaskKey{"src", 1}, TaskFailed, "boom")
	want := []Action{CancelTask{TaskKey{"src", 0}, "w1", 1}, CancelTask{TaskKey{"sink", 0}, "w1", 1}}
	if !reflect.DeepEqual(acts, want) || j.State != Failing {
		t.Fatalf("acts %v state %s", acts, j.State)
	}
	if !strings.Contains(j.Cause, "src[1]") || !strings.Contains(j.Cause, "boom") {
		t.Fatalf("cause %q", j.Cause)
	}
	// A second failure does not replace the first cause.
	report(t, j, TaskKey{"src", 0}, TaskFailed, "second")
	report(t, j, TaskKey{"sink", 0}, TaskCanceled, "")
	if j.State != Failed || !strings.Contains(j.Cause, "boom") {
		t.Fatalf("state %s cause %q", j.State, j.Cause)
	}
}

// A task whose input broke because its upstream failed may report first;
// the upstream's own failure, reported while the job fails, becomes the
// cause. A consequence never replaces a root cause.
func TestRootCausePreferredOverBrokenChannel(t *testing.T) {
	broke := "input channel edge 0 subtask 1->0: exchange: channel broke before end of stream: context canceled"
	j := newJob(t)
	deploy(t, j)
	report(t, j, TaskKey{"src", 0}, TaskRunning, "")
	report(t, j, TaskKey{"sink", 0}, TaskFailed, broke)
	if !strings.Contains(j.Cause, "channel broke") || j.Restarts[0].Task != "sink[0]" {
		t.Fatalf("cause %q", j.Cause)
	}
	report(t, j, TaskKey{"src", 1}, TaskFailed, "record at topic t partition 1 offset 3: invalid JSON")
	report(t, j, TaskKey{"src", 0}, TaskFailed, broke)
	if j.State != Failed || !strings.Contains(j.Cause, "src[1]") || !strings.Contains(j.Cause, "invalid JSON") {
		t.Fatalf("state %s cause %q", j.State, j.Cause)
	}
	if r := j.Restarts[0]; r.Task != "src[1]" || !strings.Contains(r.Cause, "invalid JSON") {
		t.Fatalf("restart record %+v", r)
	}

	// A lost worker is a root cause too.
	j = newJob(t)
	deploy(t, j)
	report(t, j, TaskKey{"sink", 0}, TaskFailed, broke)
	mustHandle(t, j, WorkerLost{Now: t0, Worker: "w1", Reason: "session broke"})
	if !strings.Contains(j.Cause, "worker w1 lost") {
		t.Fatalf("cause %q", j.Cause)
	}
}

// A failure marked unrecoverable (a fenced Kafka transaction) fails the
// job at once, whatever the restart strategy would allow.
func TestUnrecoverableFailureIsNotRestarted(t *testing.T) {
	j := newJob(t)
	j.Strategy = restart.New(&spec.Restart{Strategy: "fixed", Attempts: 10}, func() float64 { return 0 })
	deploy(t, j)
	report(t, j, TaskKey{"src", 0}, TaskFailed, "sink: commit: kafka: transaction fenced ("+dataflow.ErrUnrecoverable.Error()+")")
	report(t, j, TaskKey{"src", 1}, TaskCanceled, "")
	report(t, j, TaskKey{"sink", 0}, TaskCanceled, "")
	if j.State != Failed || !j.Restarts[0].GaveUp {
		t.Fatalf("state %s, restarts %+v", j.State, j.Restarts)
	}
}

// A job taken over by another coordinator adopts its last attempt as it
// runs: the reported workers and states, RUNNING without a deployment.
func TestAdoptedAttempt(t *testing.T) {
	j := newJob(t)
	ws := map[TaskKey]string{{"src", 0}: "w1", {"src", 1}: "w2", {"sink", 0}: "w1"}
	states := map[TaskKey]TaskState{{"src", 0}: TaskRunning, {"src", 1}: TaskRunning, {"sink", 0}: TaskRunning}
	if acts := mustHandle(t, j, Adopted{Now: t0, Attempt: 3, Workers: ws, States: states}); len(acts) != 0 {
		t.Fatalf("adoption deployed: %v", acts)
	}
	if j.State != Running || j.Attempt != 3 || j.Task(TaskKey{"src", 1}).Worker != "w2" || j.Restore != nil || len(j.Restarts) != 0 {
		t.Fatalf("state %s attempt %d %+v", j.State, j.Attempt, j)
	}
	// Reports of the adopted attempt count from now on.
	report(t, j, TaskKey{"src", 0}, TaskFailed, "boom")
	if j.State != Failing {
		t.Fatalf("state %s", j.State)
	}

	// Not adoptable: a task missing, or one that failed.
	j = newJob(t)
	delete(ws, TaskKey{"sink", 0})
	if _, err := j.Handle(Adopted{Now: t0, Attempt: 1, Workers: ws, States: states}); err == nil || j.State != Scheduling {
		t.Fatalf("adopted without every task: %v, %s", err, j.State)
	}
	ws[TaskKey{"sink", 0}] = "w1"
	states[TaskKey{"sink", 0}] = TaskFailed
	if _, err := j.Handle(Adopted{Now: t0, Attempt: 1, Workers: ws, States: states}); err == nil {
		t.Fatal("adopted a failed task")
	}
}

func TestWorkerLostFailsJob(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	acts := mustHandle(t, j, WorkerLost{Now: t0, Worker: "w1", Reason: "heartbeat timeout"})
	if !reflect.DeepEqual(acts, []Action{CancelTask{TaskKey{"src", 1}, "w2", 1}}) || j.State != Failing {
		t.Fatalf("acts %v state %s", acts, j.State)
	}
	mustHandle(t, j, WorkerLost{Now: t0, Worker: "w2", Reason: "gone"})
	if j.State != Failed || !strings.Contains(j.Cause, "worker w1 lost: heartbeat timeout") {
		t.Fatalf("state %s cause %q", j.State, j.Cause)
	}
}

func TestWorkerLostElsewhereIsIgnored(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	if acts := mustHandle(t, j, WorkerLost{Now: t0, Worker: "w9"}); acts != nil || j.State != Deploying {
		t.Fatalf("acts %v state %s", acts, j.State)
	}
}

func TestCancel(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	report(t, j, TaskKey{"src", 0}, TaskFinished, "")
	acts := mustHandle(t, j, Cancel{Now: t0})
	want := []Action{CancelTask{TaskKey{"src", 1}, "w2", 1}, CancelTask{TaskKey{"sink", 0}, "w1", 1}}
	if !reflect.DeepEqual(acts, want) || j.State != Cancelling {
		t.Fatalf("acts %v state %s", acts, j.State)
	}
	if _, err := j.Handle(Cancel{Now: t0}); !errors.Is(err, ErrNotCancellable) {
		t.Fatalf("second cancel: %v", err)
	}
	// A task whose input breaks because another was cancelled first
	// counts as cancelled.
	report(t, j, TaskKey{"src", 1}, TaskFailed, "channel broke: sender aborted")
	if tk := j.Task(TaskKey{"src", 1}); tk.State != TaskCanceled || tk.Error != "channel broke: sender aborted" {
		t.Fatalf("task failing while cancelling: %+v", tk)
	}
	mustHandle(t, j, WorkerLost{Now: t0, Worker: "w1", Reason: "x"})
	if j.State != Cancelled {
		t.Fatalf("state %s", j.State)
	}
	if _, err := j.Handle(Cancel{Now: t0}); !errors.Is(err, ErrNotCancellable) {
		t.Fatalf("cancel of cancelled: %v", err)
	}
}

func TestCancelWhileScheduling(t *testing.T) {
	j := newJob(t)
	if acts := mustHandle(t, j, Cancel{Now: t0}); acts != nil || j.State != Cancelled {
		t.Fatalf("acts %v state %s", acts, j.State)
	}
}

func TestCancelFinishedRefused(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	for _, k := range []TaskKey{{"src", 0}, {"src", 1}, {"sink", 0}} {
		report(t, j, k, TaskFinished, "")
	}
	if _, err := j.Handle(Cancel{Now: t0}); !errors.Is(err, ErrNotCancellable) {
		t.Fatalf("err %v", err)
	}
}

func TestSchedulingTimeout(t *testing.T) {
	j := newJob(t)
	mustHandle(t, j, NoSlots{Now: t0.Add(time.Second), Needed: 3, Free: 1})
	if j.State != Scheduling || !strings.Contains(j.Message, "needs 3 slots, 1 free") {
		t.Fatalf("state %s msg %q", j.State, j.Message)
	}
	mustHandle(t, j, Tick{Now: t0.Add(59 * time.Second)})
	if j.State != Scheduling {
		t.Fatalf("state %s", j.State)
	}
	mustHandle(t, j, Tick{Now: t0.Add(time.Minute)})
	if j.State != Failed || !strings.Contains(j.Cause, "needs 3 slots, 1 free") {
		t.Fatalf("state %s cause %q", j.State, j.Cause)
	}
}

func TestStaleAndRegressingReportsIgnored(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	mustHandle(t, j, TaskUpdate{Now: t0, Task: TaskKey{"src", 0}, Attempt: 0, State: TaskFailed, Error: "old"})
	report(t, j, TaskKey{"src", 0}, TaskFinished, "")
	report(t, j, TaskKey{"src", 0}, TaskRunning, "")
	report(t, j, TaskKey{"nope", 7}, TaskFailed, "")
	if j.State != Deploying || j.Task(TaskKey{"src", 0}).State != TaskFinished {
		t.Fatalf("state %s task %s", j.State, j.Task(TaskKey{"src", 0}).State)
	}
	m := &Metrics{RecordsIn: 5}
	mustHandle(t, j, TaskUpdate{Now: t0, Task: TaskKey{"src", 1}, Attempt: 1, Metrics: m})
	if j.Task(TaskKey{"src", 1}).Metrics.RecordsIn != 5 {
		t.Fatal("metrics not recorded")
	}
}

func TestUnexpectedCancelFailsJob(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	report(t, j, TaskKey{"sink", 0}, TaskCanceled, "")
	if j.State != Failing || !strings.Contains(j.Cause, "canceled unexpectedly") {
		t.Fatalf("state %s cause %q", j.State, j.Cause)
	}
}

func TestRefusedEvents(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	if _, err := j.Handle(Placed{Now: t0, Workers: placement}); err == nil {
		t.Fatal("placed twice")
	}
	if _, err := j.Handle(NoSlots{Now: t0}); err == nil {
		t.Fatal("no slots while deploying")
	}
	k := New("j2", "x", []Vertex{{"a", 1}}, t0, 0)
	mustHandle(t, k, Schedule{Now: t0})
	if _, err := k.Handle(Placed{Now: t0, Workers: map[TaskKey]string{}}); err == nil || k.State != Scheduling {
		t.Fatal("incomplete placement accepted")
	}
	if _, err := k.Handle(Schedule{Now: t0}); err == nil {
		t.Fatal("scheduled twice")
	}
}

// TestWorkLinearInTasks: deploying, running to the end, and cancelling a
// job of n subtasks examines O(n) tasks in all, however many reports come
// (a heartbeat repeats every task's state). Scans from the first task on
// every report made each of these O(n²): 2.5 million tasks examined for a
// 2,000-subtask job's deployment.
func TestWorkLinearInTasks(t *testing.T) {
	const n = 1000
	vs := []Vertex{{"src", n}, {"sink", n}}
	place := func(j *Job) {
		ws := map[TaskKey]string{}
		for _, tk := range j.Tasks {
			ws[tk.Key] = "w"
		}
		mustHandle(t, j, Schedule{Now: t0})
		mustHandle(t, j, Placed{Now: t0, Workers: ws})
	}
	report := func(j *Job, s TaskState) {
		// Each report once, then every task's state again, as in a heartbeat.
		for range 2 {
			for _, tk := range j.Tasks {
				if tk.State.Ended() {
					continue
				}
				mustHandle(t, j, TaskUpdate{Now: t0, Task: tk.Key, Attempt: j.Attempt, State: s})
			}
		}
	}

	j := New("j1", "demo", vs, t0, time.Minute)
	place(j)
	report(j, TaskRunning)
	if j.State != Running {
		t.Fatalf("state %s, want RUNNING", j.State)
	}
	report(j, TaskFinished)
	if j.State != Finished {
		t.Fatalf("state %s, want FINISHED", j.State)
	}
	// 2n tasks, each report looks one up and resumes the scan.
	if limit := 10 * 2 * n; j.scanned > limit {
		t.Errorf("deploying and finishing %d subtasks examined %d tasks, want at most %d", 2*n, j.scanned, limit)
	}

	j = New("j2", "demo", vs, t0, time.Minute)
	place(j)
	report(j, TaskRunning)
	j.scanned = 0
	if _, err := j.Handle(Cancel{Now: t0}); err != nil {
		t.Fatal(err)
	}
	report(j, TaskCanceled)
	if j.State != Cancelled {
		t.Fatalf("state %s, want CANCELLED", j.State)
	}
	if limit := 10 * 2 * n; j.scanned > limit {
		t.Errorf("cancelling %d subtasks examined %d tasks, want at most %d", 2*n, j.scanned, limit)
	}
}
