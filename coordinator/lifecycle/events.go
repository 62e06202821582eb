package lifecycle

import "time"

// Event is something that happened to a job. Every event carries the time it
// was observed, taken from the driver's clock.
type Event interface{ isEvent() }

// Schedule moves a new job to SCHEDULING.
type Schedule struct{ Now time.Time }

// Placed is the scheduler's placement of every subtask: worker by task.
// Restore is what the new attempt restores from (nil: nothing).
type Placed struct {
	Now     time.Time
	Workers map[TaskKey]string
	Restore *RestorePoint
}

// Adopted: a coordinator that took the job over (a restarted coordinator,
// a new leader) found every subtask of the job's last attempt still on
// its workers, which registered again within their reconnect grace. The
// attempt continues where it is: no redeployment, no restore.
type Adopted struct {
	Now     time.Time
	Attempt int64
	Workers map[TaskKey]string
	// States are the reported task states: RUNNING or FINISHED.
	States map[TaskKey]TaskState
}

// RestorePoint is the checkpoint or savepoint an attempt restores from.
type RestorePoint struct {
	CheckpointID int64
	// URI of its _metadata.
	URI string
	// Fallback says why a newer checkpoint was passed over ("" when the
	// latest was used).
	Fallback string
}

// Fail fails the job from outside the task reports: too many checkpoint
// failures (deploying or running: the restart strategy decides), or no
// checkpoint that can be restored (scheduling: FAILED at once). Ignored in
// other states.
type Fail struct {
	Now   time.Time
	Cause string
}

// CheckpointCompleted says a checkpoint of the current attempt completed;
// it marks a restarted job as running again.
type CheckpointCompleted struct {
	Now time.Time
	ID  int64
	// Stop: its barrier stopped the sources; a job stopping for a drain
	// restarts from it once every subtask finished (DrainStop).
	Stop bool
}

// NoSlots says the scheduler found too few free slots.
type NoSlots struct {
	Now          time.Time
	Needed, Free int
	// Reason, when set, says why instead of the slot counts (the job's
	// user operators are on too few workers).
	Reason string
}

// TaskUpdate is a worker's report on one task. An empty State carries only
// metrics.
type TaskUpdate struct {
	Now     time.Time
	Task    TaskKey
	Attempt int64
	State   TaskState
	Error   string
	// Kind classifies Error (KindUnknown from a worker too old to say).
	Kind    FailureKind
	Metrics *Metrics
}

// FailureKind is what a failure means for the job: the worker classifies
// a subtask's error by the sentinels it wraps (TaskStatus.failure_kind),
// so the job's decisions do not depend on error text.
type FailureKind int

// Failure kinds. KindUnknown: not classified (an older worker, or a
// failure the coordinator found); the text of the cause is then matched
// against the sentinels' messages, as before the kinds existed.
const (
	KindUnknown FailureKind = iota
	// KindOther may be cured by a restart.
	KindOther
	// KindChannelBroken follows from another failure upstream.
	KindChannelBroken
	// KindUnrecoverable would fail the same way after a restart.
	KindUnrecoverable
	// KindCorruptState: restoring a state file failed.
	KindCorruptState
)

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

// Tick is the passing of time (scheduling timeouts, restart delays).
type Tick struct{ Now time.Time }

func (Schedule) isEvent()   {}
func (Placed) isEvent()     {}
func (Adopted) isEvent()    {}
func (NoSlots) isEvent()    {}
func (TaskUpdate) isEvent() {}
func (WorkerLost) isEvent() {}
func (Cancel) isEvent()     {}
func (Tick) isEvent()       {}
func (Fail) isEvent()       {}

func (CheckpointCompleted) isEvent() {}

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
