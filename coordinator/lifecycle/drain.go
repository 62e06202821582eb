package lifecycle

import (
	"fmt"
	"time"
)

// RestartReason says why an attempt ended and a new one was placed.
type RestartReason string

// Restart reasons.
const (
	// RestartFailure: a subtask failed, a worker was lost, or checkpoints
	// kept failing; the restart strategy decided.
	RestartFailure RestartReason = "failure"
	// RestartDrain: a worker was drained; the job stopped at a checkpoint
	// and moved to other workers. The restart strategy is not asked and
	// its budget is not spent.
	RestartDrain RestartReason = "drain"
)

// DrainStop says the coordinator triggered a stop checkpoint because
// Worker, which runs some of the job's subtasks, is draining. When that
// checkpoint completed (CheckpointCompleted with Stop) and every subtask
// has then finished (the sources stop at the checkpoint's barrier and the
// rest follow), the job restarts at once from it instead of FINISHING.
// Only a RUNNING job takes it.
type DrainStop struct {
	Now    time.Time
	Worker string
}

// DrainAbandoned says the stop checkpoint of a drain failed (declined,
// timed out): the sources resumed and the job runs on as before; the
// coordinator may try again.
type DrainAbandoned struct{ Now time.Time }

func (DrainStop) isEvent()      {}
func (DrainAbandoned) isEvent() {}

// drainStop is a drain in progress: the stop checkpoint was triggered.
type drainStop struct {
	worker string
	since  time.Time
	// stopped: the stop checkpoint completed (CheckpointCompleted.Stop).
	// Subtasks that finish before that ended their input on their own:
	// the job finishes as usual.
	stopped bool
}

// Draining is the worker the job is stopping for, "" when it is not.
func (j *Job) Draining() string {
	if j.drain == nil {
		return ""
	}
	return j.drain.worker
}

func (j *Job) drainStop(e DrainStop) error {
	if j.State != Running {
		return fmt.Errorf("lifecycle: job %s is %s; a drain stops only a RUNNING job", j.ID, j.State)
	}
	if j.drain != nil {
		return fmt.Errorf("lifecycle: job %s is already stopping for worker %s", j.ID, j.drain.worker)
	}
	j.drain = &drainStop{worker: e.Worker, since: e.Now}
	return nil
}

// drainRestart ends an attempt that stopped for a drain: every subtask
// finished after the stop checkpoint, which the next attempt restores.
func (j *Job) drainRestart(now time.Time) error {
	d := j.drain
	j.drain = nil
	if err := j.set(Restarting, now); err != nil {
		return err
	}
	cause := fmt.Sprintf("worker %s is draining: the job stopped at a checkpoint to move to other workers", d.worker)
	j.Restarts = append(j.Restarts, &Restart{Reason: RestartDrain, FailedAttempt: j.Attempt, Cause: cause, Worker: d.worker,
		DetectedAt: d.since, CancelledAt: now})
	j.RestartAt = now
	j.Message = "restarting after: " + cause
	return nil
}
