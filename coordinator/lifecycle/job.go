package lifecycle

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/restart"
	"github.com/weir-stream/weir/dataflow"
)

// TaskState is the state of one subtask of the current attempt.
type TaskState string

// Task states. Lost means the task's worker went away; it counts as ended.
const (
	TaskPending   TaskState = "PENDING"
	TaskDeploying TaskState = "DEPLOYING"
	TaskRunning   TaskState = "RUNNING"
	TaskFinished  TaskState = "FINISHED"
	TaskFailed    TaskState = "FAILED"
	TaskCanceled  TaskState = "CANCELED"
	TaskLost      TaskState = "LOST"
)

// Ended reports whether the task no longer runs (and holds no slot).
func (s TaskState) Ended() bool {
	switch s {
	case TaskFinished, TaskFailed, TaskCanceled, TaskLost:
		return true
	}
	return false
}

// rank orders task states so that a stale report never moves a task back.
func (s TaskState) rank() int {
	switch s {
	case TaskPending:
		return 0
	case TaskDeploying:
		return 1
	case TaskRunning:
		return 2
	}
	return 3
}

// TaskKey names a subtask within a job.
type TaskKey struct {
	Vertex  string
	Subtask int
}

func (k TaskKey) String() string { return fmt.Sprintf("%s[%d]", k.Vertex, k.Subtask) }

// Metrics are a task's counters as last reported.
type Metrics struct {
	RecordsIn       int64
	RecordsOut      int64
	BackpressuredMs int64
	// BusyMs and IdleMs: time spent processing and waiting for input.
	BusyMs, IdleMs int64
	// Watermark is the task's event-time watermark in ms (nil: none yet).
	Watermark      *int64
	DroppedLate    int64
	SkippedInvalid int64
	DeadLettered   int64
	// Links: whether the task's sources and sinks reach their brokers.
	Links []Link
	// StateSizes: estimated keyed-state bytes per stateful operator.
	StateSizes []StateSize
}

// Link is a source's or sink's connectivity as last reported.
type Link struct {
	Node, Target string
	Connected    bool
	// Since is when it became unreachable (zero while connected).
	Since     time.Time
	LastError string
}

// StateSize is one operator's estimated keyed-state size.
type StateSize struct {
	Node  string
	Bytes int64
}

// Task is one subtask of the current attempt.
type Task struct {
	Key     TaskKey
	Worker  string // "" until placed
	State   TaskState
	Error   string
	Metrics Metrics
}

// Vertex is what the state machine knows of a job graph vertex.
type Vertex struct {
	ID          string
	Parallelism int
}

// Job is one job's lifecycle. The zero value is not usable; use New.
type Job struct {
	ID       string
	Name     string
	State    State
	Attempt  int64
	Vertices []Vertex
	// Tasks in vertex order, then subtask order.
	Tasks []*Task
	// Cause is the first failure (FAILED, FAILING) or why the job was
	// cancelled; CauseKind classifies it.
	Cause     string
	CauseKind FailureKind
	// Message says what the job waits for (e.g. free slots).
	Message string

	SubmittedAt time.Time
	// SchedulingSince is when the job last entered SCHEDULING.
	SchedulingSince time.Time
	StartedAt       time.Time // first RUNNING
	EndedAt         time.Time // terminal

	// ScheduleTimeout fails a job that waited this long for slots (0: wait
	// forever). A job being placed again (after a failure, or taken over
	// from another coordinator) asks its restart strategy instead, as for
	// any failure: each timeout counts as one, and the job waits on while
	// the strategy allows.
	ScheduleTimeout time.Duration
	// SlotWaits counts the scheduling timeouts of the current SCHEDULING
	// round that the restart strategy let the job wait on after.
	SlotWaits int
	// slotDeadline is when the current wait for slots times out (zero:
	// SchedulingSince + ScheduleTimeout); waitWhy is why it waits.
	slotDeadline time.Time
	waitWhy      string

	// Strategy decides whether a failed job restarts (nil: never).
	Strategy restart.Strategy
	// Checkpointing says periodic checkpoints are on: a restarted job
	// counts as running again only after its first checkpoint completes.
	Checkpointing bool
	// RunningSince is when the current attempt became RUNNING (zero
	// before).
	RunningSince time.Time
	// RestartAt is when a RESTARTING job goes back to SCHEDULING.
	RestartAt time.Time
	// Restore is what the current attempt restored from (nil: nothing).
	Restore *RestorePoint
	// Restarts records every failure of a running or deploying job, oldest
	// first.
	Restarts []*Restart
	// drain: the job is stopping at a checkpoint for a draining worker
	// (drain.go).
	drain *drainStop

	// index finds a task by key: a heartbeat names each task it carries,
	// and a scan per name made a heartbeat cost O(tasks of the job).
	index map[TaskKey]int
	// runFrom, finFrom and endFrom: every task before them is running or
	// finished, finished, ended. A task only moves forward within an
	// attempt, so progress and stopIfQuiet resume there instead of
	// scanning every task on every update (O(tasks²) per deploy, cancel
	// and finish: 10 million tasks examined to deploy and finish 2,000).
	runFrom, finFrom, endFrom int
	// scanned counts tasks examined by Task, progress and stopIfQuiet:
	// the tests hold it linear in the updates.
	scanned int
}

// Restart is one failure and what came of it. Times are zero until the
// step happened.
type Restart struct {
	// Reason: a failure, or a drain (RestartDrain).
	Reason RestartReason
	// FailedAttempt is the attempt that failed; Attempt the one that
	// replaced it (0 until scheduled).
	FailedAttempt int64
	Attempt       int64
	Cause         string
	Task          string // the failed subtask, e.g. "agg[2]" ("" if none)
	Worker        string // the failed or lost worker ("" if none)
	// Delay is the restart strategy's delay (0 when it gave up).
	Delay time.Duration
	// GaveUp: the strategy refused; the job FAILED.
	GaveUp bool
	// RestoredFrom is the checkpoint id the new attempt restored from (0:
	// none); URI its _metadata; Fallback why a newer one was passed over.
	RestoredFrom int64
	RestoredURI  string
	Fallback     string

	DetectedAt  time.Time
	CancelledAt time.Time // every subtask of the failed attempt stopped
	ScheduledAt time.Time // the new attempt was placed and deployed
	RestoredAt  time.Time // every subtask of it RUNNING
	RunningAt   time.Time // first checkpoint after the restore completed
}

// New returns a CREATED job with one pending task per subtask.
func New(id, name string, vertices []Vertex, now time.Time, scheduleTimeout time.Duration) *Job {
	j := &Job{ID: id, Name: name, State: Created, Vertices: vertices, SubmittedAt: now, ScheduleTimeout: scheduleTimeout}
	j.resetTasks()
	return j
}

// Ended returns a job that had already ended before this coordinator
// started, as its job store remembers it: state is FINISHED, FAILED or
// CANCELLED, and its tasks show the state the job ended in. Nothing
// changes it any more.
func Ended(id, name string, vertices []Vertex, submitted time.Time, state State, cause string, ended time.Time) (*Job, error) {
	var ts TaskState
	switch state {
	case Finished:
		ts = TaskFinished
	case Failed:
		ts = TaskFailed
	case Cancelled:
		ts = TaskCanceled
	default:
		return nil, fmt.Errorf("lifecycle: job %s: %q is not a terminal state", id, state)
	}
	j := &Job{ID: id, Name: name, State: state, Vertices: vertices, SubmittedAt: submitted, Cause: cause, EndedAt: ended}
	j.resetTasks()
	for _, t := range j.Tasks {
		t.State = ts
	}
	return j, nil
}

func (j *Job) resetTasks() {
	j.Tasks = j.Tasks[:0]
	j.index = map[TaskKey]int{}
	for _, v := range j.Vertices {
		for i := 0; i < v.Parallelism; i++ {
			j.index[TaskKey{v.ID, i}] = len(j.Tasks)
			j.Tasks = append(j.Tasks, &Task{Key: TaskKey{v.ID, i}, State: TaskPending})
		}
	}
	j.rewind()
}

// rewind restarts the progress scans: the tasks' states were set anew.
func (j *Job) rewind() { j.runFrom, j.finFrom, j.endFrom = 0, 0, 0 }

// Slots is the number of slots the job needs with slot sharing
// (scheduler.Place): one per subtask of its widest vertex.
func (j *Job) Slots() int {
	n := 0
	for _, v := range j.Vertices {
		n = max(n, v.Parallelism)
	}
	return n
}

// Task returns the task with the given key, or nil.
func (j *Job) Task(k TaskKey) *Task {
	if i, ok := j.index[k]; ok && i < len(j.Tasks) && j.Tasks[i].Key == k {
		j.scanned++
		return j.Tasks[i]
	}
	for _, t := range j.Tasks {
		j.scanned++
		if t.Key == k {
			return t
		}
	}
	return nil
}

// ErrNotCancellable is returned by Handle(Cancel) when the job is already
// stopping or stopped.
var ErrNotCancellable = errors.New("lifecycle: job cannot be cancelled in its current state")

// set moves the job to state to, refusing changes the table does not allow.
func (j *Job) set(to State, now time.Time) error {
	if !CanTransition(j.State, to) {
		return &TransitionError{From: j.State, To: to}
	}
	j.State = to
	switch {
	case to == Scheduling:
		j.SchedulingSince = now
		j.SlotWaits, j.slotDeadline, j.waitWhy = 0, time.Time{}, ""
	case to == Running:
		if j.StartedAt.IsZero() {
			j.StartedAt = now
		}
		j.RunningSince = now
		if r := j.currentRestart(); r != nil && !r.ScheduledAt.IsZero() && r.RestoredAt.IsZero() {
			r.RestoredAt = now
			if !j.Checkpointing {
				r.RunningAt = now
			}
		}
	case to.Terminal():
		j.EndedAt = now
		j.Message = ""
	}
	if to != Scheduling {
		j.Message = ""
	}
	return nil
}

// Handle applies one event and returns the actions the driver must carry
// out. An error means the event was refused; the job is then unchanged.
func (j *Job) Handle(ev Event) ([]Action, error) {
	switch e := ev.(type) {
	case Schedule:
		return nil, j.set(Scheduling, e.Now)
	case Placed:
		return j.placed(e)
	case Adopted:
		return nil, j.adopted(e)
	case NoSlots:
		return nil, j.noSlots(e)
	case TaskUpdate:
		return j.taskUpdate(e)
	case WorkerLost:
		return j.workerLost(e)
	case Cancel:
		return j.cancel(e)
	case Tick:
		switch j.State {
		case Scheduling:
			return nil, j.checkScheduleTimeout(e.Now, j.waitWhy)
		case Restarting:
			if !e.Now.Before(j.RestartAt) {
				return nil, j.reschedule(e.Now)
			}
		}
		return nil, nil
	case Fail:
		switch j.State {
		case Deploying, Running:
			return j.fail(failure{cause: e.Cause}, e.Now)
		case Scheduling:
			// Nothing runs; a failure found while placing (no checkpoint
			// can be restored) is final.
			j.Cause, j.CauseKind = e.Cause, KindUnknown
			return nil, j.set(Failed, e.Now)
		}
		return nil, nil
	case DrainStop:
		return nil, j.drainStop(e)
	case DrainAbandoned:
		j.drain = nil
		return nil, nil
	case CheckpointCompleted:
		if e.Stop && j.drain != nil {
			j.drain.stopped = true
		}
		if r := j.currentRestart(); r != nil && !r.RestoredAt.IsZero() && r.RunningAt.IsZero() && j.State == Running {
			r.RunningAt = e.Now
		}
		return nil, nil
	}
	return nil, fmt.Errorf("lifecycle: unknown event %T", ev)
}

func (j *Job) placed(e Placed) ([]Action, error) {
	if j.State != Scheduling {
		return nil, &TransitionError{From: j.State, To: Deploying}
	}
	for _, t := range j.Tasks {
		if e.Workers[t.Key] == "" {
			return nil, fmt.Errorf("lifecycle: placement has no worker for %s", t.Key)
		}
	}
	if err := j.set(Deploying, e.Now); err != nil {
		return nil, err
	}
	j.Attempt++
	j.Restore = e.Restore
	if r := j.currentRestart(); r != nil && r.ScheduledAt.IsZero() && !r.GaveUp {
		r.Attempt, r.ScheduledAt = j.Attempt, e.Now
		if e.Restore != nil {
			r.RestoredFrom, r.RestoredURI, r.Fallback = e.Restore.CheckpointID, e.Restore.URI, e.Restore.Fallback
		}
	}
	acts := make([]Action, 0, len(j.Tasks))
	j.rewind()
	for _, t := range j.Tasks {
		t.Worker = e.Workers[t.Key]
		t.State = TaskDeploying
		t.Error = ""
		t.Metrics = Metrics{}
		acts = append(acts, DeployTask{Task: t.Key, Worker: t.Worker, Attempt: j.Attempt})
	}
	return acts, nil
}

// adopted takes over a running attempt: every task keeps its worker and
// reported state, and the job is RUNNING (or FINISHED) again at once.
func (j *Job) adopted(e Adopted) error {
	if j.State != Scheduling {
		return &TransitionError{From: j.State, To: Deploying}
	}
	for _, t := range j.Tasks {
		if e.Workers[t.Key] == "" {
			return fmt.Errorf("lifecycle: adopted attempt %d has no worker for %s", e.Attempt, t.Key)
		}
		if s := e.States[t.Key]; s != TaskRunning && s != TaskFinished {
			return fmt.Errorf("lifecycle: adopted task %s is %s, not RUNNING or FINISHED", t.Key, s)
		}
	}
	if err := j.set(Deploying, e.Now); err != nil {
		return err
	}
	j.Attempt = e.Attempt
	j.Restore = nil
	j.rewind()
	for _, t := range j.Tasks {
		t.Worker, t.State, t.Error, t.Metrics = e.Workers[t.Key], e.States[t.Key], "", Metrics{}
	}
	return j.progress(e.Now)
}

func (j *Job) noSlots(e NoSlots) error {
	if j.State != Scheduling {
		return &TransitionError{From: j.State, To: Scheduling}
	}
	why := fmt.Sprintf("needs %d slots, %d free", e.Needed, e.Free)
	if e.Reason != "" {
		why = e.Reason
	}
	j.waitWhy = why
	j.Message = j.waitMessage()
	return j.checkScheduleTimeout(e.Now, why)
}

// placingAgain: the job ran before (a failure, or a take-over from another
// coordinator), so waiting for slots is part of restarting it.
func (j *Job) placingAgain() bool { return len(j.Restarts) > 0 || j.Attempt > 0 }

// waitMessage says what a SCHEDULING job waits for and, when it is being
// placed again, who decides how long.
func (j *Job) waitMessage() string {
	msg := "waiting for slots: " + j.waitWhy
	if j.placingAgain() && j.ScheduleTimeout > 0 && j.Strategy != nil {
		msg += fmt.Sprintf(" (placing it again after a failure: every %s without slots counts as a failure for the restart strategy, %d so far)",
			roundDuration(j.ScheduleTimeout), j.SlotWaits)
	}
	return msg
}

func (j *Job) checkScheduleTimeout(now time.Time, why string) error {
	if j.ScheduleTimeout <= 0 {
		return nil
	}
	deadline := j.slotDeadline
	if deadline.IsZero() {
		deadline = j.SchedulingSince.Add(j.ScheduleTimeout)
	}
	if now.Before(deadline) {
		return nil
	}
	if why == "" {
		why = "no placement found"
	}
	cause := fmt.Sprintf("scheduling timed out after %s: %s", j.ScheduleTimeout, trimWaiting(why))
	r := j.currentRestart()
	if r != nil {
		// Placing it again after a failure: the failure (a worker killed
		// for memory, say) is what explains the missing slots.
		cause += "; it was being placed again after: " + r.Cause
	}
	if j.placingAgain() && j.Strategy != nil {
		ok, delay := j.Strategy.Decide(now, restart.Failure{Cause: cause})
		if ok {
			// Wait on: the strategy's delay (a growing backoff) plus
			// another timeout; slots that free up meanwhile are taken.
			j.SlotWaits++
			j.slotDeadline = now.Add(delay + j.ScheduleTimeout)
			j.Message = j.waitMessage()
			return nil
		}
		if r != nil {
			r.GaveUp = true
		}
		cause = fmt.Sprintf("%s (not restarted: %s)", cause, j.Strategy)
	}
	j.Cause, j.CauseKind = cause, KindUnknown
	return j.set(Failed, now)
}

func trimWaiting(s string) string {
	const p = "waiting for slots: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func (j *Job) taskUpdate(e TaskUpdate) ([]Action, error) {
	if e.Attempt != j.Attempt || j.Attempt == 0 || j.State == Restarting || j.State == Scheduling {
		return nil, nil // a report from an earlier attempt
	}
	t := j.Task(e.Task)
	if t == nil || t.State.Ended() {
		if t != nil && e.Metrics != nil {
			t.Metrics = *e.Metrics
		}
		return nil, nil
	}
	if e.Metrics != nil {
		t.Metrics = *e.Metrics
	}
	if e.State == "" || e.State.rank() < t.State.rank() || e.State == t.State {
		return nil, nil
	}
	if e.State == TaskFailed {
		t.Error = e.Error
		if j.State == Cancelling {
			// Every running task has been told to cancel; one that fails
			// meanwhile (typically its input broke because an upstream task
			// was cancelled first) is cancelled too, as in Flink. The error
			// stays for diagnosis.
			e.State = TaskCanceled
		}
	}
	t.State = e.State
	switch j.State {
	case Deploying, Running:
		switch e.State {
		case TaskFailed:
			return j.fail(failure{fmt.Sprintf("task %s on worker %s failed: %s", t.Key, t.Worker, e.Error), t.Key.String(), t.Worker, e.Kind}, e.Now)
		case TaskCanceled:
			return j.fail(failure{fmt.Sprintf("task %s on worker %s was canceled unexpectedly", t.Key, t.Worker), t.Key.String(), t.Worker, KindOther}, e.Now)
		}
		return nil, j.progress(e.Now)
	case Failing:
		if e.State == TaskFailed {
			j.preferRootCause(failure{fmt.Sprintf("task %s on worker %s failed: %s", t.Key, t.Worker, e.Error), t.Key.String(), t.Worker, e.Kind})
		}
		return nil, j.stopIfQuiet(e.Now)
	case Cancelling:
		return nil, j.stopIfQuiet(e.Now)
	}
	return nil, nil
}

// progress moves a deploying job to RUNNING once every task runs (or has
// already finished), and a running job to FINISHED once all finished.
func (j *Job) progress(now time.Time) error {
	if j.State == Deploying {
		for ; j.runFrom < len(j.Tasks); j.runFrom++ {
			j.scanned++
			if s := j.Tasks[j.runFrom].State; s != TaskRunning && s != TaskFinished {
				return nil
			}
		}
		if err := j.set(Running, now); err != nil {
			return err
		}
	}
	if j.State == Running {
		for ; j.finFrom < len(j.Tasks); j.finFrom++ {
			j.scanned++
			if j.Tasks[j.finFrom].State != TaskFinished {
				return nil
			}
		}
		if j.drain != nil && j.drain.stopped {
			return j.drainRestart(now)
		}
		return j.set(Finished, now)
	}
	return nil
}

type failure struct {
	cause, task, worker string
	kind                FailureKind
}

// is reports whether a failure of kind k with cause is of kind want. An
// unclassified one (KindUnknown) is matched by the text of want's
// sentinel, the contract before the kinds crossed the wire; it stays for
// workers of earlier releases and for causes the coordinator composes
// (a failed checkpoint quoting a worker's decline).
func is(k FailureKind, cause string, want FailureKind) bool {
	if k != KindUnknown {
		return k == want
	}
	switch want {
	case KindChannelBroken:
		return strings.Contains(cause, dataflow.ErrChannelBroken.Error())
	case KindUnrecoverable:
		return strings.Contains(cause, dataflow.ErrUnrecoverable.Error())
	case KindCorruptState:
		return strings.Contains(cause, checkpoint.ErrCorrupt.Error())
	}
	return false
}

// IsCorruptState reports whether a subtask's failure of kind k with
// message msg was a corrupt or missing state file at restore.
func IsCorruptState(k FailureKind, msg string) bool { return is(k, msg, KindCorruptState) }

// fail records the first cause, opens a restart record and cancels every
// other task that still runs.
func (j *Job) fail(f failure, now time.Time) ([]Action, error) {
	if err := j.set(Failing, now); err != nil {
		return nil, err
	}
	j.Cause, j.CauseKind = f.cause, f.kind
	j.drain = nil // a failure during a drain is a failure
	j.Restarts = append(j.Restarts, &Restart{Reason: RestartFailure, FailedAttempt: j.Attempt, Cause: f.cause, Task: f.task, Worker: f.worker, DetectedAt: now})
	acts := j.cancelAll()
	return acts, j.stopIfQuiet(now)
}

// preferRootCause replaces the cause of a failing job when it is only a
// consequence — a task whose input channel broke because its upstream task
// or worker failed — and f, reported while the job fails, is not: which
// report reaches the coordinator first is a race, the root cause is what
// the user needs to see.
func (j *Job) preferRootCause(f failure) {
	if !is(j.CauseKind, j.Cause, KindChannelBroken) || is(f.kind, f.cause, KindChannelBroken) {
		return
	}
	j.Cause, j.CauseKind = f.cause, f.kind
	if r := j.currentRestart(); r != nil && r.FailedAttempt == j.Attempt {
		r.Cause, r.Task, r.Worker = f.cause, f.task, f.worker
	}
}

// currentRestart is the record of the failure being handled or recovered
// from, or nil.
func (j *Job) currentRestart() *Restart {
	if len(j.Restarts) == 0 {
		return nil
	}
	return j.Restarts[len(j.Restarts)-1]
}

// failed asks the restart strategy once every task of a failing job has
// stopped.
func (j *Job) failed(now time.Time) error {
	r := j.currentRestart()
	if r != nil {
		r.CancelledAt = now
	}
	ok, delay := false, time.Duration(0)
	unrecoverable := is(j.CauseKind, j.Cause, KindUnrecoverable)
	if j.Strategy != nil && !unrecoverable {
		ok, delay = j.Strategy.Decide(now, restart.Failure{Cause: j.Cause, RunningSince: j.RunningSince})
	}
	if !ok {
		if r != nil {
			r.GaveUp = true
		}
		if j.Strategy != nil && !unrecoverable {
			j.Cause = fmt.Sprintf("%s (not restarted: %s)", j.Cause, j.Strategy)
		}
		return j.set(Failed, now)
	}
	if err := j.set(Restarting, now); err != nil {
		return err
	}
	if r != nil {
		r.Delay = delay
	}
	j.RestartAt = now.Add(delay)
	j.Message = fmt.Sprintf("restarting in %s after: %s", roundDuration(delay), j.Cause)
	return nil
}

// reschedule ends the restart delay: every task is pending again and the
// job waits for slots.
func (j *Job) reschedule(now time.Time) error {
	if err := j.set(Scheduling, now); err != nil {
		return err
	}
	j.resetTasks()
	j.RunningSince = time.Time{}
	j.Cause, j.CauseKind = "", KindUnknown
	return nil
}

func (j *Job) cancelAll() []Action {
	var acts []Action
	for _, t := range j.Tasks {
		if !t.State.Ended() && t.Worker != "" {
			acts = append(acts, CancelTask{Task: t.Key, Worker: t.Worker, Attempt: j.Attempt})
		}
	}
	return acts
}

// stopIfQuiet ends a failing or cancelling job once no task runs any more.
func (j *Job) stopIfQuiet(now time.Time) error {
	for ; j.endFrom < len(j.Tasks); j.endFrom++ {
		j.scanned++
		if !j.Tasks[j.endFrom].State.Ended() {
			return nil
		}
	}
	switch j.State {
	case Failing:
		return j.failed(now)
	case Cancelling:
		return j.set(Cancelled, now)
	}
	return nil
}

func (j *Job) workerLost(e WorkerLost) ([]Action, error) {
	hit := false
	for _, t := range j.Tasks {
		if t.Worker == e.Worker && !t.State.Ended() {
			t.State = TaskLost
			t.Error = "worker lost: " + e.Reason
			hit = true
		}
	}
	if !hit {
		return nil, nil
	}
	switch j.State {
	case Deploying, Running:
		return j.fail(failure{cause: fmt.Sprintf("worker %s lost: %s", e.Worker, e.Reason), worker: e.Worker, kind: KindOther}, e.Now)
	case Failing:
		j.preferRootCause(failure{cause: fmt.Sprintf("worker %s lost: %s", e.Worker, e.Reason), worker: e.Worker, kind: KindOther})
		return nil, j.stopIfQuiet(e.Now)
	case Cancelling:
		return nil, j.stopIfQuiet(e.Now)
	}
	return nil, nil
}

func (j *Job) cancel(e Cancel) ([]Action, error) {
	if !j.State.Cancellable() {
		return nil, ErrNotCancellable
	}
	j.drain = nil
	cause := "cancelled by user"
	if e.Reason != "" {
		cause = e.Reason
	}
	switch j.State {
	case Created, Scheduling:
		if err := j.set(Cancelled, e.Now); err != nil {
			return nil, err
		}
		j.Cause = cause
		return nil, nil
	}
	if err := j.set(Cancelling, e.Now); err != nil {
		return nil, err
	}
	j.Cause = cause
	acts := j.cancelAll()
	return acts, j.stopIfQuiet(e.Now)
}

// roundDuration shortens a duration for a message: 1.234567891s reads 1.2s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
