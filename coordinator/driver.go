package coordinator

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/checkpointing"
	"github.com/weir-stream/weir/coordinator/jobstore"
	"github.com/weir-stream/weir/coordinator/lifecycle"
	"github.com/weir-stream/weir/coordinator/restart"
	"github.com/weir-stream/weir/coordinator/scheduler"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// errUnknownJob and errNotCancellable are mapped to 404 and 409 by the REST
// layer.
var (
	errUnknownJob     = errors.New("coordinator: unknown job")
	errNotCancellable = lifecycle.ErrNotCancellable
	// errJobStore: the job store could not be written; the REST layer
	// answers 503, the request may be retried.
	errJobStore = errors.New("coordinator: job store unavailable")
)

// applyLocked feeds one event to a job, carries out its actions, and then
// settles the consequences: lost workers found while sending, and jobs that
// may now be placed.
func (c *Coordinator) applyLocked(j *jobEntry, ev lifecycle.Event) error {
	before := j.m.State
	var task *lifecycle.Task
	var taskBefore lifecycle.TaskState
	if u, ok := ev.(lifecycle.TaskUpdate); ok {
		if task = j.m.Task(u.Task); task != nil {
			taskBefore = task.State
		}
	}
	acts, err := c.handleLocked(j, ev)
	if err != nil {
		return err
	}
	if task != nil && task.State == taskBefore && j.m.State == before && len(acts) == 0 && len(c.lost) == 0 {
		return nil // a heartbeat's metrics: no slot freed, nothing to place
	}
	c.dispatchLocked(j, acts)
	c.settleLocked()
	return nil
}

// handleLocked feeds one event to the job's state machine and keeps the
// checkpoint tracker in step with the job's state. The caller dispatches
// the returned actions.
func (c *Coordinator) handleLocked(j *jobEntry, ev lifecycle.Event) ([]lifecycle.Action, error) {
	before := j.m.State
	acts, err := j.m.Handle(ev)
	if err != nil {
		return nil, err
	}
	if j.m.State != before {
		c.log.Info("job state", "job", j.m.ID, "from", before, "to", j.m.State, "attempt", j.m.Attempt, "cause", j.m.Cause)
		if j.m.State == lifecycle.Scheduling {
			j.restoreGen++ // a new round chooses its restore point afresh
			j.restore = nil
		}
		c.jobStateChangedLocked(j, before)
		if j.m.State.Terminal() {
			c.recordEndLocked(j)
		} else if j.m.State == lifecycle.Deploying {
			c.recordAttemptLocked(j)
		}
	}
	return acts, nil
}

func (c *Coordinator) dispatchLocked(j *jobEntry, acts []lifecycle.Action) {
	// Every deployment of the attempt carries the same placement table:
	// built once, not once per subtask (O(subtasks²) allocations per
	// deploy). The messages only share it for reading, while marshalled.
	// A worker that takes DeployTask.as_before gets the spec and the
	// table with its first subtask only: they are O(subtasks) bytes each.
	var placements []*controlpb.Placement
	var sent map[string]bool
	for _, a := range acts {
		switch a := a.(type) {
		case lifecycle.DeployTask:
			if placements == nil {
				placements, sent = c.placementsLocked(j), map[string]bool{}
			}
			d := &controlpb.DeployTask{
				Task:          taskID(j.m.ID, a.Attempt, a.Task),
				CheckpointDir: j.st.URI(j.m.ID),
			}
			if w := c.workers[a.Worker]; w != nil && w.deployAsBefore && sent[a.Worker] {
				d.AsBefore = true
			} else {
				d.JobSpec, d.Placements = j.spec, placements
				sent[a.Worker] = true
			}
			if r := j.m.Restore; r != nil {
				d.Restore = &controlpb.Restore{CheckpointId: r.CheckpointID, MetadataUri: r.URI}
			}
			c.sendLocked(a.Worker, &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Deploy{Deploy: d}})
		case lifecycle.CancelTask:
			c.sendLocked(a.Worker, &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Cancel{Cancel: &controlpb.CancelTask{
				Task: taskID(j.m.ID, a.Attempt, a.Task),
			}}})
		}
	}
}

func taskID(job string, attempt int64, k lifecycle.TaskKey) *controlpb.TaskID {
	return &controlpb.TaskID{JobId: job, Attempt: attempt, VertexId: k.Vertex, Subtask: int32(k.Subtask)}
}

func (c *Coordinator) placementsLocked(j *jobEntry) []*controlpb.Placement {
	ps := make([]*controlpb.Placement, 0, len(j.m.Tasks))
	for _, t := range j.m.Tasks {
		p := &controlpb.Placement{VertexId: t.Key.Vertex, Subtask: int32(t.Key.Subtask), WorkerId: t.Worker}
		if w := c.workers[t.Worker]; w != nil {
			p.DataAddr = w.dataAddr
		}
		ps = append(ps, p)
	}
	return ps
}

// settleLocked handles workers found lost while dispatching, then places
// every job that waits for slots, in submission order. Both can cascade
// (a lost worker frees slots; a deployment can find a dead worker), so it
// loops until nothing changes.
func (c *Coordinator) settleLocked() {
	for {
		if len(c.lost) > 0 {
			l := c.lost[0]
			c.lost = c.lost[1:]
			c.dropWorkerLocked(l.id, l.reason)
			continue
		}
		if !c.scheduleOneLocked() {
			return
		}
	}
}

// scheduleOneLocked tries to place one SCHEDULING job and reports whether a
// job changed state.
func (c *Coordinator) scheduleOneLocked() bool {
	now := c.cfg.Clock.Now()
	for _, id := range c.order {
		j := c.jobs[id]
		if j.m.State != lifecycle.Scheduling {
			continue
		}
		if !j.adoptUntil.IsZero() {
			if now.Before(j.adoptUntil) {
				continue // its last attempt may still run (reconcile.go)
			}
			c.endAdoptionLocked(j)
		}
		reqs := make([]scheduler.Request, 0, len(j.m.Vertices))
		for _, v := range j.m.Vertices {
			reqs = append(reqs, scheduler.Request{Vertex: v.ID, Parallelism: v.Parallelism})
		}
		as, err := scheduler.Place(reqs, c.jobNeedLocked(j), c.freeSlotsLocked())
		var ev lifecycle.Event
		var ie *scheduler.InsufficientSlotsError
		var me *scheduler.MissingOperatorError
		switch {
		case err == nil:
			ws := make(map[lifecycle.TaskKey]string, len(as))
			for _, a := range as {
				ws[lifecycle.TaskKey{Vertex: a.Vertex, Subtask: a.Subtask}] = a.Worker
			}
			rp, rerr, ready := c.restorePointLocked(j)
			if !ready {
				// Its storage is being read; later jobs must not take
				// its slots meanwhile.
				return false
			}
			if rerr != nil {
				var unusable *noRestoreError
				if errors.As(rerr, &unusable) {
					if _, ferr := c.handleLocked(j, lifecycle.Fail{Now: now, Cause: rerr.Error()}); ferr != nil {
						c.log.Error("failing job", "job", id, "err", ferr)
					}
					return true
				}
				// Storage trouble: try again on the next tick.
				c.log.Warn("choosing the checkpoint to restore", "job", id, "err", rerr)
				return false
			}
			ev = lifecycle.Placed{Now: now, Workers: ws, Restore: rp}
		case errors.As(err, &ie):
			msg := j.m.Message
			if _, herr := c.handleLocked(j, lifecycle.NoSlots{Now: now, Needed: ie.Needed, Free: ie.Free, Reason: ie.Error()}); herr != nil {
				c.log.Error("scheduling", "job", id, "err", herr)
			}
			if j.m.State != lifecycle.Scheduling {
				return true
			}
			if j.m.Message != msg {
				c.log.Info("job waits for slots", "job", id, "needed", ie.Needed, "free", ie.Free)
			}
			// Later jobs must not overtake this one.
			return false
		case errors.As(err, &me):
			// The workers with its operators are gone (submit refuses a
			// job no worker can run): wait for them like for slots.
			msg := j.m.Message
			if _, herr := c.handleLocked(j, lifecycle.NoSlots{Now: now, Reason: me.Error()}); herr != nil {
				c.log.Error("scheduling", "job", id, "err", herr)
			}
			if j.m.State != lifecycle.Scheduling {
				return true
			}
			if j.m.Message != msg {
				c.log.Info("job waits for workers with its operators", "job", id, "why", me.Error())
			}
			return false
		default:
			c.log.Error("scheduling", "job", id, "err", err)
			return false
		}
		acts, herr := c.handleLocked(j, ev)
		if herr != nil {
			c.log.Error("placing job", "job", id, "err", herr)
			return false
		}
		c.log.Info("job deploying", "job", id, "attempt", j.m.Attempt, "tasks", len(acts))
		c.dispatchLocked(j, acts)
		return true
	}
	return false
}

// dropWorkerLocked removes a worker from the registry, ends its session and
// tells every job it ran tasks for.
func (c *Coordinator) dropWorkerLocked(id, reason string) {
	w := c.workers[id]
	if w != nil {
		reason += lossMemoryNote(w.memory)
		c.deleteWorkerLocked(id)
		c.forgetDrainLocked(id)
		w.kill()
		c.log.Warn("worker lost", "worker", id, "reason", reason)
	}
	now := c.cfg.Clock.Now()
	for _, jid := range c.order {
		j := c.jobs[jid]
		acts, err := c.handleLocked(j, lifecycle.WorkerLost{Now: now, Worker: id, Reason: reason})
		if err != nil {
			c.log.Error("worker lost", "job", jid, "err", err)
			continue
		}
		c.dispatchLocked(j, acts)
	}
}

// tick drops silent workers, fires scheduling timeouts and restart delays,
// and drives the checkpoint trackers.
func (c *Coordinator) tick() {
	now := c.cfg.Clock.Now()
	silent := c.silentWorkers(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	for w, why := range silent {
		// Still the registered session, and still silent: a heartbeat
		// may have come while the lock was taken.
		if c.workers[w.id] == w && c.cfg.Clock.Now().Sub(c.lastSeen(w)) > c.cfg.HeartbeatTimeout {
			c.lost = append(c.lost, lostWorker{w.id, why})
		}
	}
	c.settleLocked()
	c.drainTickLocked()
	for _, id := range c.order {
		j := c.jobs[id]
		switch j.m.State {
		case lifecycle.Scheduling, lifecycle.Restarting:
			if err := c.applyLocked(j, lifecycle.Tick{Now: now}); err != nil {
				c.log.Error("tick", "job", id, "err", err)
			}
		case lifecycle.Running:
			c.checkpointEventLocked(j, checkpointing.Tick{Now: now})
		}
	}
}

// submit registers a parsed job and schedules it. initial, when set, is the
// savepoint or checkpoint the first attempt restores from.
// The job is in the job store before its id is returned, so it survives a
// coordinator restart from then on. The job store write and the storage
// listing run without the lock; the id is reserved meanwhile.
func (c *Coordinator) submit(job *spec.Job, specYAML []byte, g *graph.Graph, st checkpoint.Storage, initial *lifecycle.RestorePoint) (string, error) {
	c.mu.Lock()
	id, err := c.newJobIDLocked()
	if err == nil {
		c.reserved[id] = true
	}
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	unreserve := func() {
		c.mu.Lock()
		delete(c.reserved, id)
		c.mu.Unlock()
	}
	rec := jobstore.Record{ID: id, Name: job.Name, Spec: specYAML, SubmittedAt: c.cfg.Clock.Now(), Desired: jobstore.Run}
	if job.Checkpoint != nil {
		rec.StorageURI = job.Checkpoint.Storage
	}
	if initial != nil {
		rec.SavepointURI, rec.SavepointID = initial.URI, initial.CheckpointID
	}
	ctx, cancel := c.storageCtx()
	err = c.jobStore.Put(ctx, &rec)
	cancel()
	if err != nil {
		unreserve()
		return "", fmt.Errorf("%w: %w", errJobStore, err)
	}
	last := c.lastCheckpointID(id, st)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reserved, id)
	j := c.registerLocked(rec, job, g, st, initial, last)
	// A new id has no history in storage.
	j.history, j.historyLoaded = newJobHistory(), true
	c.log.Info("job submitted", "job", id, "name", job.Name, "slots", j.m.Slots(), "restore", initial != nil)
	return id, c.applyLocked(j, lifecycle.Schedule{Now: rec.SubmittedAt})
}

// registerLocked adds a job in CREATED with its checkpoint tracker, whose
// ids continue after last (lastCheckpointID).
func (c *Coordinator) registerLocked(rec jobstore.Record, job *spec.Job, g *graph.Graph, st checkpoint.Storage, initial *lifecycle.RestorePoint, last int64) *jobEntry {
	id := rec.ID
	vs := make([]lifecycle.Vertex, 0, len(g.Vertices))
	sources := map[lifecycle.TaskKey]bool{}
	for _, v := range g.Vertices {
		vs = append(vs, lifecycle.Vertex{ID: v.ID, Parallelism: v.Parallelism})
		if len(v.Nodes) > 0 && v.Nodes[0].Source != nil {
			for i := range v.Parallelism {
				sources[lifecycle.TaskKey{Vertex: v.ID, Subtask: i}] = true
			}
		}
	}
	timeout := c.cfg.ScheduleTimeout
	if timeout < 0 {
		timeout = 0
	}
	m := lifecycle.New(id, job.Name, vs, rec.SubmittedAt, timeout)
	m.Strategy = restart.New(job.Restart, c.cfg.Rand)
	m.Checkpointing = job.Checkpoint != nil
	j := &jobEntry{m: m, spec: rec.Spec, graph: g, st: st, sources: sources, initial: initial, bad: map[string]string{}, rec: rec, io: &ioQueue{}}
	j.cp = checkpointing.New(c.trackerConfig(id, job, rec.Spec, g), last)
	c.jobs[id] = j
	c.order = append(c.order, id)
	return j
}

func (c *Coordinator) newJobIDLocked() (string, error) {
	for range 16 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("coordinator: job id: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if c.jobs[id] == nil && !c.reserved[id] {
			return id, nil
		}
	}
	return "", errors.New("coordinator: could not find a free job id")
}

// cancel asks a job to stop; it returns the state the job is in afterwards.
func (c *Coordinator) cancel(id string) (lifecycle.State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.jobs[id]
	if j == nil {
		return "", errUnknownJob
	}
	if !j.m.State.Cancellable() {
		return j.m.State, errNotCancellable
	}
	// Remember the cancel first: a coordinator that dies while the job
	// cancels must not resume it. The write runs on the job's I/O queue,
	// after the job's earlier writes, without the lock.
	if j.rec.Desired == jobstore.Run {
		j.rec.Desired = jobstore.Cancel
		done := make(chan error, 1)
		c.persistLocked(j, done)
		c.mu.Unlock()
		err := <-done
		c.mu.Lock()
		if c.jobs[id] != j {
			return "", errUnknownJob
		}
		if err != nil {
			if j.rec.Desired == jobstore.Cancel {
				j.rec.Desired = jobstore.Run
			}
			return j.m.State, fmt.Errorf("%w: %w", errJobStore, err)
		}
		if !j.m.State.Cancellable() {
			return j.m.State, errNotCancellable
		}
	}
	if err := c.applyLocked(j, lifecycle.Cancel{Now: c.cfg.Clock.Now()}); err != nil {
		return j.m.State, err
	}
	return j.m.State, nil
}

// taskStatus applies one task report from a worker.
func (c *Coordinator) taskStatusLocked(workerID string, st *controlpb.TaskStatus, withState bool) {
	tid := st.GetTask()
	j := c.jobs[tid.GetJobId()]
	if j == nil {
		return
	}
	k := lifecycle.TaskKey{Vertex: tid.GetVertexId(), Subtask: int(tid.GetSubtask())}
	if t := j.m.Task(k); t == nil || t.Worker != workerID {
		return // not this worker's task (or a stale attempt placed elsewhere)
	}
	ev := lifecycle.TaskUpdate{Now: c.cfg.Clock.Now(), Task: k, Attempt: tid.GetAttempt(), Error: st.GetError(), Kind: failureKind(st.GetFailureKind())}
	if withState {
		ev.State = taskState(st.GetState())
	}
	if t := j.m.Task(k); withState && tid.GetAttempt() == j.m.Attempt && t.State != ev.State && !t.State.Ended() {
		switch ev.State {
		case lifecycle.TaskFailed:
			c.noteRestoreFailureLocked(j, k, ev.Kind, st.GetError())
		case lifecycle.TaskFinished:
			c.checkpointEventLocked(j, checkpointing.TaskFinished{Now: ev.Now, Attempt: j.m.Attempt, Task: checkpointing.TaskKey(k)})
		}
	}
	if st.GetEndOfInput() && tid.GetAttempt() == j.m.Attempt {
		// Also from heartbeats: a report that came before the job was
		// RUNNING (which resets the tracker) is repeated.
		c.checkpointEventLocked(j, checkpointing.InputEnded{Now: ev.Now, Attempt: j.m.Attempt, Task: checkpointing.TaskKey(k)})
		if id := j.cp.Final(); id != 0 && withState && st.GetState() == controlpb.TaskState_TASK_STATE_RUNNING {
			// Still waiting after the final checkpoint completed: its
			// notification was lost or not sent (a failed fence check).
			c.notifyLocked(j, j.m.Attempt, id, true, tid, nil)
		}
	}
	if m := st.GetMetrics(); m != nil {
		ev.Metrics = &lifecycle.Metrics{
			RecordsIn: m.GetRecordsIn(), RecordsOut: m.GetRecordsOut(), BackpressuredMs: m.GetBackpressuredMs(),
			DroppedLate: m.GetDroppedLate(), SkippedInvalid: m.GetSkippedInvalid(), DeadLettered: m.GetDeadLettered(),
			Links: linksOf(m.GetLinks()), StateSizes: stateSizesOf(m.GetStateSizes()),
			BusyMs: m.GetBusyMs(), IdleMs: m.GetIdleMs(),
		}
		if m.Watermark != nil {
			wm := m.GetWatermark()
			ev.Metrics.Watermark = &wm
		}
	}
	if err := c.applyLocked(j, ev); err != nil {
		c.log.Error("task status", "job", j.m.ID, "task", k, "err", err)
	}
}

func taskState(s controlpb.TaskState) lifecycle.TaskState {
	switch s {
	case controlpb.TaskState_TASK_STATE_DEPLOYING:
		return lifecycle.TaskDeploying
	case controlpb.TaskState_TASK_STATE_RUNNING:
		return lifecycle.TaskRunning
	case controlpb.TaskState_TASK_STATE_FINISHED:
		return lifecycle.TaskFinished
	case controlpb.TaskState_TASK_STATE_FAILED:
		return lifecycle.TaskFailed
	case controlpb.TaskState_TASK_STATE_CANCELED:
		return lifecycle.TaskCanceled
	}
	return ""
}

// failureKind maps the wire's failure kind to the job's.
func failureKind(k controlpb.FailureKind) lifecycle.FailureKind {
	switch k {
	case controlpb.FailureKind_FAILURE_KIND_OTHER:
		return lifecycle.KindOther
	case controlpb.FailureKind_FAILURE_KIND_CHANNEL_BROKEN:
		return lifecycle.KindChannelBroken
	case controlpb.FailureKind_FAILURE_KIND_UNRECOVERABLE:
		return lifecycle.KindUnrecoverable
	case controlpb.FailureKind_FAILURE_KIND_CORRUPT_STATE:
		return lifecycle.KindCorruptState
	}
	return lifecycle.KindUnknown
}
