package lifecycle

import "time"

// Event is something that happened to a job. Every event carries the time it
// was observed, taken from the driver's clock.
type Event interface{ isEvent() }

// Schedule moves a new job to SCHEDULING.
type Schedule struct{ Now time.Time }

// Placed is the scheduler's placement of every subtask: worker by task.
type Placed struct {
	Now     time.Time
	Workers map[TaskKey]string
}

// NoSlots says the scheduler found too few free slots.
type NoSlots struct {
	Now          time.Time
	Needed, Free int
}

// TaskUpdate is a worker's report on one task. An empty State carries only
// metrics.
type TaskUpdate struct {
	Now     time.Time
	Task    TaskKey
	Attempt int64
	State   TaskState
	Error   string
	Metrics *Metrics
}

// WorkerLost says a worker's session broke or it stopped heartbeating.
type WorkerLost struct {
	Now    time.Time
	Worker string
	Reason string
}

// Cancel is a user's cancel request.
type Cancel struct {
	Now    time.Time
	Reason string
}

// Tick is the passing of time (scheduling timeouts).
type Tick struct{ Now time.Time }

func (Schedule) isEvent()   {}
func (Placed) isEvent()     {}
func (NoSlots) isEvent()    {}
func (TaskUpdate) isEvent() {}
func (WorkerLost) isEvent() {}
func (Cancel) isEvent()     {}
func (Tick) isEvent()       {}

// Action is something the driver must do.
type Action interface{ isAction() }

// DeployTask asks Worker to run the task in the given attempt.
type DeployTask struct {
	Task    TaskKey
	Worker  string
	Attempt int64
}

// CancelTask asks Worker to stop the task.
type CancelTask struct {
	Task    TaskKey
	Worker  string
	Attempt int64
}

func (DeployTask) isAction() {}
func (CancelTask) isAction() {}
