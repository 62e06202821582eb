package lifecycle

import (
	"errors"
	"fmt"
	"time"
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
	DroppedLate     int64
	SkippedInvalid  int64
	DeadLettered    int64
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
	// cancelled.
	Cause string
	// Message says what the job waits for (e.g. free slots).
	Message string

	SubmittedAt time.Time
	// SchedulingSince is when the job last entered SCHEDULING.
	SchedulingSince time.Time
	StartedAt       time.Time // first RUNNING
	EndedAt         time.Time // terminal

	// ScheduleTimeout fails a job that waited this long for slots (0: wait
	// forever).
	ScheduleTimeout time.Duration
}

// New returns a CREATED job with one pending task per subtask.
func New(id, name string, vertices []Vertex, now time.Time, scheduleTimeout time.Duration) *Job {
	j := &Job{ID: id, Name: name, State: Created, Vertices: vertices, SubmittedAt: now, ScheduleTimeout: scheduleTimeout}
	j.resetTasks()
	return j
}

func (j *Job) resetTasks() {
	j.Tasks = j.Tasks[:0]
	for _, v := range j.Vertices {
		for i := 0; i < v.Parallelism; i++ {
			j.Tasks = append(j.Tasks, &Task{Key: TaskKey{v.ID, i}, State: TaskPending})
		}
	}
}

// Slots is the number of slots the job needs (one per subtask).
func (j *Job) Slots() int { return len(j.Tasks) }

// Task returns the task with the given key, or nil.
func (j *Job) Task(k TaskKey) *Task {
	for _, t := range j.Tasks {
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
	case to == Running && j.StartedAt.IsZero():
		j.StartedAt = now
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
	case NoSlots:
		return nil, j.noSlots(e)
	case TaskUpdate:
		return j.taskUpdate(e)
	case WorkerLost:
		return j.workerLost(e)
	case Cancel:
		return j.cancel(e)
	case Tick:
		if j.State == Scheduling {
			return nil, j.checkScheduleTimeout(e.Now, j.Message)
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
	acts := make([]Action, 0, len(j.Tasks))
	for _, t := range j.Tasks {
		t.Worker = e.Workers[t.Key]
		t.State = TaskDeploying
		t.Error = ""
		t.Metrics = Metrics{}
		acts = append(acts, DeployTask{Task: t.Key, Worker: t.Worker, Attempt: j.Attempt})
	}
	return acts, nil
}

func (j *Job) noSlots(e NoSlots) error {
	if j.State != Scheduling {
		return &TransitionError{From: j.State, To: Scheduling}
	}
	msg := fmt.Sprintf("waiting for slots: needs %d slots, %d free", e.Needed, e.Free)
	j.Message = msg
	return j.checkScheduleTimeout(e.Now, fmt.Sprintf("needs %d slots, %d free", e.Needed, e.Free))
}

func (j *Job) checkScheduleTimeout(now time.Time, why string) error {
	if j.ScheduleTimeout <= 0 || now.Sub(j.SchedulingSince) < j.ScheduleTimeout {
		return nil
	}
	if why == "" {
		why = "no placement found"
	}
	j.Cause = fmt.Sprintf("scheduling timed out after %s: %s", j.ScheduleTimeout, trimWaiting(why))
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
	if e.Attempt != j.Attempt || j.Attempt == 0 {
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
	t.State = e.State
	if e.State == TaskFailed {
		t.Error = e.Error
	}
	switch j.State {
	case Deploying, Running:
		switch e.State {
		case TaskFailed:
			return j.fail(fmt.Sprintf("task %s on worker %s failed: %s", t.Key, t.Worker, e.Error), e.Now)
		case TaskCanceled:
			return j.fail(fmt.Sprintf("task %s on worker %s was canceled unexpectedly", t.Key, t.Worker), e.Now)
		}
		return nil, j.progress(e.Now)
	case Failing, Cancelling:
		return nil, j.stopIfQuiet(e.Now)
	}
	return nil, nil
}

// progress moves a deploying job to RUNNING once every task runs (or has
// already finished), and a running job to FINISHED once all finished.
func (j *Job) progress(now time.Time) error {
	if j.State == Deploying {
		for _, t := range j.Tasks {
			if t.State != TaskRunning && t.State != TaskFinished {
				return nil
			}
		}
		if err := j.set(Running, now); err != nil {
			return err
		}
	}
	if j.State == Running {
		for _, t := range j.Tasks {
			if t.State != TaskFinished {
				return nil
			}
		}
		return j.set(Finished, now)
	}
	return nil
}

// fail records the first cause and cancels every other task that still runs.
func (j *Job) fail(cause string, now time.Time) ([]Action, error) {
	if err := j.set(Failing, now); err != nil {
		return nil, err
	}
	j.Cause = cause
	acts := j.cancelAll()
	return acts, j.stopIfQuiet(now)
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
	for _, t := range j.Tasks {
		if !t.State.Ended() {
			return nil
		}
	}
	switch j.State {
	case Failing:
		return j.set(Failed, now)
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
		return j.fail(fmt.Sprintf("worker %s lost: %s", e.Worker, e.Reason), e.Now)
	case Failing, Cancelling:
		return nil, j.stopIfQuiet(e.Now)
	}
	return nil, nil
}

func (j *Job) cancel(e Cancel) ([]Action, error) {
	if !j.State.Cancellable() {
		return nil, ErrNotCancellable
	}
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
