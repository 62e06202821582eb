package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
	"github.com/weir-stream/weir/worker/task"
)

type taskKey struct {
	job     string
	attempt int64
	vertex  string
	subtask int32
}

func keyOf(id *controlpb.TaskID) taskKey {
	return taskKey{id.GetJobId(), id.GetAttempt(), id.GetVertexId(), id.GetSubtask()}
}

func (k taskKey) pb() *controlpb.TaskID {
	return &controlpb.TaskID{JobId: k.job, Attempt: k.attempt, VertexId: k.vertex, Subtask: k.subtask}
}

// runningTask is one subtask on this worker, from deployment until its
// final state has been reported.
type runningTask struct {
	key      taskKey
	state    controlpb.TaskState
	err      string
	reported controlpb.TaskState // last state sent to the coordinator
	counters *dataflow.Counters
	cancel   context.CancelFunc
	canceled bool // cancel was requested
	control  *task.Control
	// inputEnded: a source at the end of its input (TaskStatus.end_of_input);
	// reportedEnd: that was sent.
	inputEnded, reportedEnd bool
}

func (t *runningTask) ended() bool {
	switch t.state {
	case controlpb.TaskState_TASK_STATE_FINISHED, controlpb.TaskState_TASK_STATE_FAILED, controlpb.TaskState_TASK_STATE_CANCELED:
		return true
	}
	return false
}

func (t *runningTask) status() *controlpb.TaskStatus {
	c := t.counters
	return &controlpb.TaskStatus{
		Task: t.key.pb(), State: t.state, Error: t.err, EndOfInput: t.inputEnded,
		Metrics: &controlpb.TaskMetrics{
			RecordsIn: c.RecordsIn.Load(), RecordsOut: c.RecordsOut.Load(),
			BackpressuredMs: c.Backpressured().Milliseconds(), DroppedLate: c.DroppedLate.Load(),
			SkippedInvalid: c.SkippedInvalid.Load(), DeadLettered: c.DeadLettered.Load(),
			Links: linksPB(c.Links()), StateSizes: stateSizesPB(c.StateSizes()),
		},
	}
}

func linksPB(ls []dataflow.LinkStatus) []*controlpb.Link {
	var out []*controlpb.Link
	for _, l := range ls {
		if !l.Known {
			continue
		}
		pl := &controlpb.Link{Node: l.Node, Target: l.Target, Connected: l.Connected, LastError: l.LastError}
		if !l.Connected {
			pl.UnreachableSinceUnixMs = l.Since.UnixMilli()
		}
		out = append(out, pl)
	}
	return out
}

func stateSizesPB(ss []dataflow.OperatorStateSize) []*controlpb.StateSize {
	var out []*controlpb.StateSize
	for _, s := range ss {
		out = append(out, &controlpb.StateSize{Node: s.Node, Bytes: s.Bytes})
	}
	return out
}

func (w *Worker) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// deploy starts one subtask. Problems with the deployment itself (bad spec,
// no free slot) become a FAILED report rather than a broken session.
func (w *Worker) deploy(d *controlpb.DeployTask) {
	k := keyOf(d.GetTask())
	d, depErr := w.asBefore(d)
	// Parsing and building the graph happen outside the lock so that a big
	// spec does not hold up heartbeats.
	var dep task.Deployment
	if depErr == nil {
		dep, depErr = w.deployment(d)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return // stopping: the session ends and the coordinator drops us
	}
	if old := w.tasks[k]; old != nil {
		// The coordinator deploys a subtask of an attempt once; a repeat
		// must not start a second copy. Its status goes out again, so the
		// coordinator sees what this worker runs under that id.
		w.log.Warn("ignoring a repeated deployment; reporting the subtask's state again",
			"task", fmt.Sprintf("%s/%d/%s[%d]", k.job, k.attempt, k.vertex, k.subtask), "state", old.state)
		old.reported = controlpb.TaskState_TASK_STATE_UNSPECIFIED
		w.wake()
		return
	}
	t := &runningTask{key: k, state: controlpb.TaskState_TASK_STATE_DEPLOYING, counters: &dataflow.Counters{}, control: dep.Control}
	w.tasks[k] = t
	fail := func(err error) {
		t.state, t.err = controlpb.TaskState_TASK_STATE_FAILED, err.Error()
		w.log.Error("deploy failed", "task", fmt.Sprintf("%s/%d/%s[%d]", k.job, k.attempt, k.vertex, k.subtask), "err", err)
		w.wake()
	}
	if n := w.slotsUsedLocked(); n > w.cfg.Slots {
		fail(fmt.Errorf("worker %s has no free slot (%d slots, all held by other jobs' subtasks or other subtask indexes)", w.cfg.ID, w.cfg.Slots))
		return
	}
	if depErr != nil {
		fail(depErr)
		return
	}
	ctx, cancel := context.WithCancel(w.ctx)
	t.cancel = cancel
	w.taskWG.Add(1)
	go w.runTask(ctx, t, dep)
}

// slotsUsedLocked counts the slots the running subtasks hold. With slot
// sharing (coordinator/scheduler) one slot holds a slot group: the subtasks
// of one job with the same subtask index, one of each vertex. Attempts do
// not matter: a subtask of the last attempt still stopping shares its
// group's slot with its successor, as the coordinator counts it.
func (w *Worker) slotsUsedLocked() int {
	type group struct {
		job     string
		subtask int32
	}
	groups := map[group]bool{}
	for k, t := range w.tasks {
		if !t.ended() {
			groups[group{k.job, k.subtask}] = true
		}
	}
	return len(groups)
}

// asBefore fills in the spec and placements of a DeployTask.as_before from
// the job's last full deployment, and remembers a full one. Deployments
// arrive in order on one session, the full one of an attempt first.
func (w *Worker) asBefore(d *controlpb.DeployTask) (*controlpb.DeployTask, error) {
	id := d.GetTask()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !d.GetAsBefore() {
		for job := range w.deployed {
			if job != id.GetJobId() && !w.runsJobLocked(job) {
				delete(w.deployed, job)
			}
		}
		w.deployed[id.GetJobId()] = &controlpb.DeployTask{Task: id, JobSpec: d.GetJobSpec(), Placements: d.GetPlacements()}
		return d, nil
	}
	prev := w.deployed[id.GetJobId()]
	if prev == nil || prev.GetTask().GetAttempt() != id.GetAttempt() {
		return d, fmt.Errorf("deployment of %s[%d] (job %s, attempt %d) refers to an earlier deployment of the attempt for its spec and placements, and this worker got none",
			id.GetVertexId(), id.GetSubtask(), id.GetJobId(), id.GetAttempt())
	}
	return &controlpb.DeployTask{Task: id, JobSpec: prev.GetJobSpec(), Placements: prev.GetPlacements(),
		CheckpointDir: d.GetCheckpointDir(), Restore: d.GetRestore()}, nil
}

// runsJobLocked reports whether a subtask of the job has not ended here.
func (w *Worker) runsJobLocked(job string) bool {
	for k, t := range w.tasks {
		if k.job == job && !t.ended() {
			return true
		}
	}
	return false
}

func (w *Worker) deployment(d *controlpb.DeployTask) (dep task.Deployment, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("building the job graph panicked: %v", v)
		}
	}()
	// Secret references are resolved here, on the worker, from its own
	// environment and secrets directory: the coordinator never holds the
	// values (dataflow/spec/secrets.go).
	data, err := spec.ResolveSecrets(d.GetJobSpec(), spec.OSSecrets())
	if err != nil {
		return dep, fmt.Errorf("job spec: %w", err)
	}
	job, err := w.cfg.ParseSpec(data)
	if err != nil {
		return dep, fmt.Errorf("job spec: %w", err)
	}
	g, err := w.cfg.BuildGraph(job)
	if err != nil {
		return dep, fmt.Errorf("job graph: %w", err)
	}
	id := d.GetTask()
	if g.Vertex(id.GetVertexId()) == nil {
		return dep, fmt.Errorf("job graph has no vertex %q", id.GetVertexId())
	}
	places := map[string][]task.Address{}
	for _, p := range d.GetPlacements() {
		v := g.Vertex(p.GetVertexId())
		if v == nil {
			return dep, fmt.Errorf("placement names unknown vertex %q", p.GetVertexId())
		}
		if places[v.ID] == nil {
			places[v.ID] = make([]task.Address, v.Parallelism)
		}
		i := int(p.GetSubtask())
		if i < 0 || i >= v.Parallelism {
			return dep, fmt.Errorf("placement of %s[%d]: vertex has parallelism %d", v.ID, i, v.Parallelism)
		}
		places[v.ID][i] = task.Address{WorkerID: p.GetWorkerId(), DataAddr: p.GetDataAddr()}
	}
	if err := w.checkPlacements(g, id, places); err != nil {
		return dep, err
	}
	dep = task.Deployment{
		ID:            task.ID{JobID: id.GetJobId(), Attempt: id.GetAttempt(), VertexID: id.GetVertexId(), Subtask: int(id.GetSubtask())},
		Graph:         g,
		Placements:    places,
		LocalWorkerID: w.cfg.ID,
		CheckpointDir: d.GetCheckpointDir(),
		Control:       task.NewControl(),
	}
	if r := d.GetRestore(); r != nil {
		dep.Restore = &task.RestorePoint{CheckpointID: r.GetCheckpointId(), MetadataURI: r.GetMetadataUri()}
	}
	return dep, nil
}

// checkPlacements refuses a deployment this worker cannot run as placed:
// its own subtask placed on another worker or at another data address
// (the other subtasks would send its input elsewhere, and it would sit
// RUNNING with no records), or a subtask of the job placed nowhere.
func (w *Worker) checkPlacements(g *graph.Graph, id *controlpb.TaskID, places map[string][]task.Address) error {
	if id.GetJobId() == "" {
		return errors.New("deployment names no job")
	}
	name := fmt.Sprintf("%s[%d]", id.GetVertexId(), id.GetSubtask())
	v := g.Vertex(id.GetVertexId())
	if i := int(id.GetSubtask()); i < 0 || i >= v.Parallelism {
		return fmt.Errorf("deployment of %s: vertex %s has parallelism %d", name, v.ID, v.Parallelism)
	}
	own := places[v.ID]
	if own == nil || own[id.GetSubtask()].WorkerID == "" {
		return fmt.Errorf("deployment of %s has no placement for that subtask", name)
	}
	if p := own[id.GetSubtask()]; p.WorkerID != w.cfg.ID {
		return fmt.Errorf("deployment places %s on worker %q, but this is worker %q", name, p.WorkerID, w.cfg.ID)
	} else if p.DataAddr != "" && p.DataAddr != w.advertise {
		return fmt.Errorf("deployment places %s at data address %s, but worker %q listens at %s", name, p.DataAddr, w.cfg.ID, w.advertise)
	}
	for _, gv := range g.Vertices {
		ps := places[gv.ID]
		for i := range gv.Parallelism {
			switch {
			case i >= len(ps) || ps[i].WorkerID == "":
				return fmt.Errorf("deployment of %s places %s[%d] on no worker", name, gv.ID, i)
			case ps[i].WorkerID != w.cfg.ID && ps[i].DataAddr == "":
				return fmt.Errorf("deployment of %s places %s[%d] on worker %q with no data address", name, gv.ID, i, ps[i].WorkerID)
			}
		}
	}
	return nil
}

func (w *Worker) runTask(ctx context.Context, t *runningTask, dep task.Deployment) {
	defer w.taskWG.Done()
	defer t.cancel()
	running := sync.OnceFunc(func() { w.setState(t, controlpb.TaskState_TASK_STATE_RUNNING, "") })
	if dep.Restore == nil {
		running()
	}
	log := w.log.With("job", t.key.job, "attempt", t.key.attempt, "vertex", t.key.vertex, "subtask", t.key.subtask)
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				log.Error("task panicked", "panic", v, "stack", string(debug.Stack()))
				err = fmt.Errorf("task panicked: %v", v)
			}
		}()
		inputEnded := func() {
			w.mu.Lock()
			t.inputEnded = true
			w.mu.Unlock()
			w.wake()
		}
		return w.cfg.RunTask(ctx, dep, TaskEnv{Builder: w.cfg.Builder, Logger: log, Exchange: w.exchange, Reporter: w,
			OpenStore: w.cfg.OpenStore, Running: running, InputEnded: inputEnded}, t.counters)
	}()
	w.mu.Lock()
	canceled := t.canceled || w.ctx.Err() != nil
	w.mu.Unlock()
	switch {
	case canceled && (err == nil || errors.Is(err, context.Canceled)):
		w.setState(t, controlpb.TaskState_TASK_STATE_CANCELED, "")
	case err != nil:
		log.Warn("task failed", "err", err)
		w.setState(t, controlpb.TaskState_TASK_STATE_FAILED, err.Error())
	default:
		w.setState(t, controlpb.TaskState_TASK_STATE_FINISHED, "")
	}
}

func (w *Worker) setState(t *runningTask, s controlpb.TaskState, msg string) {
	w.mu.Lock()
	if !t.ended() {
		t.state, t.err = s, msg
	}
	w.mu.Unlock()
	w.wake()
}

// cancelTask cancels one task's context; unknown tasks are ignored (they
// ended already).
func (w *Worker) cancelTask(id *controlpb.TaskID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t := w.tasks[keyOf(id)]; t != nil && !t.ended() {
		t.canceled = true
		if t.cancel != nil {
			t.cancel()
		}
	}
}

// cancelAllTasks cancels every task, waits for all to stop and forgets them:
// after a broken session their jobs have failed on the coordinator.
// cancelAllTasks cancels every subtask, waits for them and returns how
// many there were.
func (w *Worker) cancelAllTasks() int {
	w.mu.Lock()
	n := len(w.tasks)
	for _, t := range w.tasks {
		t.canceled = true
		if t.cancel != nil {
			t.cancel()
		}
	}
	w.mu.Unlock()
	w.taskWG.Wait()
	w.mu.Lock()
	clear(w.tasks)
	w.outbox = nil
	w.mu.Unlock()
	return n
}

// registrationStatuses is every subtask's status for a Register: they are
// reported there, so they count as reported; ended ones are then
// forgotten. Checkpoint messages for the previous coordinator are dropped.
func (w *Worker) registrationStatuses() []*controlpb.TaskStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*controlpb.TaskStatus
	for k, t := range w.tasks {
		out = append(out, t.status())
		t.reported = t.state
		if t.ended() {
			delete(w.tasks, k)
		}
	}
	w.outbox = nil
	return out
}

// checkpointCommand hands a checkpoint message to the task it names.
// Messages for tasks this worker does not run (ended, or of another
// attempt) are ignored: the coordinator matches acks by attempt.
func (w *Worker) checkpointCommand(id *controlpb.TaskID, cmd task.Command) {
	w.mu.Lock()
	t := w.tasks[keyOf(id)]
	w.mu.Unlock()
	if (t == nil || !t.control.Post(cmd)) && cmd.Kind == task.CmdTrigger {
		w.Decline(&controlpb.CheckpointDecline{Task: id, CheckpointId: cmd.CheckpointID, Reason: "task not running on worker " + w.cfg.ID})
	}
}

// Ack implements task.Reporter: the ack goes out on the session.
func (w *Worker) Ack(a *controlpb.CheckpointAck) {
	w.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_CheckpointAck{CheckpointAck: a}})
}

// Decline implements task.Reporter.
func (w *Worker) Decline(d *controlpb.CheckpointDecline) {
	w.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_CheckpointDecline{CheckpointDecline: d}})
}

func (w *Worker) send(m *controlpb.WorkerMessage) {
	w.mu.Lock()
	w.outbox = append(w.outbox, m)
	w.mu.Unlock()
	w.wake()
}

// takeOutbox returns the checkpoint messages waiting to be sent.
func (w *Worker) takeOutbox() []*controlpb.WorkerMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.outbox
	w.outbox = nil
	return out
}

// pendingStatuses returns the tasks whose state changed since last reported
// and forgets ended tasks once their final state is out.
func (w *Worker) pendingStatuses() []*controlpb.TaskStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*controlpb.TaskStatus
	for k, t := range w.tasks {
		if t.state != t.reported || t.inputEnded != t.reportedEnd {
			out = append(out, t.status())
			t.reported, t.reportedEnd = t.state, t.inputEnded
		}
		if t.ended() {
			delete(w.tasks, k)
		}
	}
	return out
}

func (w *Worker) allStatuses() []*controlpb.TaskStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*controlpb.TaskStatus, 0, len(w.tasks))
	for _, t := range w.tasks {
		out = append(out, t.status())
	}
	return out
}
