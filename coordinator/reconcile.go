package coordinator

import (
	"time"

	"github.com/weir-stream/weir/coordinator/lifecycle"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// Reconciling the subtasks that workers still run when they register.
//
// A worker whose session breaks keeps its subtasks running for its
// reconnect grace and reports them when it registers again. A coordinator
// that took jobs over from its job store (it restarted, or a standby was
// elected) gives each resumed job an adoption window:
//
//   - when the registered workers report every subtask of the job's last
//     attempt, RUNNING or FINISHED, the attempt is adopted as it runs: no
//     redeployment, no restore, the checkpoint ids continue;
//   - when the window ends first (a worker died with its subtasks, or
//     never came back), the reported subtasks are cancelled and the job
//     restarts from its latest completed checkpoint, as after a failure.
//
// Every other reported subtask (a job this coordinator does not run, an
// older attempt, a worker that came back after its job moved on) is
// cancelled. Nothing is kept or restarted blindly.

type reportedTask struct {
	worker  string
	attempt int64
	state   lifecycle.TaskState
}

// reconcileLocked handles the subtasks a worker reports at registration.
func (c *Coordinator) reconcileLocked(workerID string, tasks []*controlpb.TaskStatus) {
	for _, st := range tasks {
		tid := st.GetTask()
		k := lifecycle.TaskKey{Vertex: tid.GetVertexId(), Subtask: int(tid.GetSubtask())}
		state := taskState(st.GetState())
		if j := c.jobs[tid.GetJobId()]; j != nil && !j.adoptUntil.IsZero() && j.m.Task(k) != nil {
			if j.reported == nil {
				j.reported = map[lifecycle.TaskKey]reportedTask{}
			}
			j.reported[k] = reportedTask{worker: workerID, attempt: tid.GetAttempt(), state: state}
			continue
		}
		if state.Ended() {
			continue
		}
		c.log.Info("cancelling a subtask no job runs here", "worker", workerID, "job", tid.GetJobId(),
			"attempt", tid.GetAttempt(), "task", k)
		c.sendLocked(workerID, &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Cancel{Cancel: &controlpb.CancelTask{Task: tid}}})
	}
	for _, id := range c.order {
		if j := c.jobs[id]; !j.adoptUntil.IsZero() {
			c.tryAdoptLocked(j)
		}
	}
}

// tryAdoptLocked adopts the job's last attempt when every subtask of it
// is reported, on a registered worker, RUNNING or FINISHED.
func (c *Coordinator) tryAdoptLocked(j *jobEntry) {
	if j.m.State != lifecycle.Scheduling {
		return
	}
	var attempt int64
	workers := map[lifecycle.TaskKey]string{}
	states := map[lifecycle.TaskKey]lifecycle.TaskState{}
	for _, t := range j.m.Tasks {
		r, ok := j.reported[t.Key]
		if !ok || c.workers[r.worker] == nil || (r.state != lifecycle.TaskRunning && r.state != lifecycle.TaskFinished) {
			return
		}
		if attempt == 0 {
			attempt = r.attempt
		} else if r.attempt != attempt {
			return
		}
		workers[t.Key], states[t.Key] = r.worker, r.state
	}
	if attempt < j.rec.Attempt {
		return // an attempt older than the one recorded: not the job's
	}
	j.adoptUntil, j.reported = time.Time{}, nil
	if err := c.applyLocked(j, lifecycle.Adopted{Now: c.cfg.Clock.Now(), Attempt: attempt, Workers: workers, States: states}); err != nil {
		c.log.Error("adopting a running attempt", "job", j.m.ID, "attempt", attempt, "err", err)
		return
	}
	c.recordAttemptLocked(j)
	c.log.Info("job adopted as it runs", "job", j.m.ID, "attempt", attempt, "tasks", len(workers))
}

// endAdoptionLocked ends a job's adoption window without adopting: the
// subtasks reported for it are cancelled, and the next attempt comes after
// every attempt seen, so workers accept its channels.
func (c *Coordinator) endAdoptionLocked(j *jobEntry) {
	for k, r := range j.reported {
		j.m.Attempt = max(j.m.Attempt, r.attempt)
		if r.state.Ended() || c.workers[r.worker] == nil {
			continue
		}
		c.sendLocked(r.worker, &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Cancel{Cancel: &controlpb.CancelTask{
			Task: taskID(j.m.ID, r.attempt, k)}}})
	}
	if len(j.reported) > 0 {
		c.log.Info("not every subtask of the last attempt came back: restarting from the checkpoint", "job", j.m.ID,
			"reported", len(j.reported), "tasks", len(j.m.Tasks))
	}
	j.adoptUntil, j.reported = time.Time{}, nil
}
