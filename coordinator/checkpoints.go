package coordinator

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/checkpointing"
	"github.com/weir-stream/weir/coordinator/lifecycle"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/failpoint"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// This file drives the checkpoint tracker (package checkpointing): it feeds
// it the job's state changes, ticks, acks and declines, and carries out its
// actions over the worker sessions and the checkpoint storage. Storage and
// etcd calls run off the coordinator's lock on the job's I/O queue
// (jobio.go), bounded by StorageTimeout; their outcome comes back to the
// tracker as an event (Committed), so a commit cannot interleave with the
// events that follow it: the tracker holds the checkpoint as committing
// until then.

func (c *Coordinator) trackerConfig(id string, job *spec.Job, specYAML []byte, g *graph.Graph) checkpointing.Config {
	cfg := checkpointing.Config{JobID: id, JobName: job.Name, JobSpec: specYAML, MaxParallelism: g.MaxParallelism}
	if cfg.MaxParallelism == 0 {
		cfg.MaxParallelism = job.MaxParallelism
	}
	if cp := job.Checkpoint; cp != nil {
		cfg.Interval, cfg.Timeout, cfg.MinPause = cp.Interval.D(), cp.Timeout.D(), cp.MinPause.D()
		cfg.TolerableFailures, cfg.Retained = cp.TolerableFailures, cp.Retained
	}
	return cfg
}

// isStopping reports whether Stop has begun.
func (c *Coordinator) isStopping() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// storageCtx bounds one storage or etcd call; Stop cancels it.
func (c *Coordinator) storageCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ioCtx, c.cfg.StorageTimeout)
}

// lastCheckpointID is the highest checkpoint or savepoint id found in
// storage (and etcd) for a job, so ids are never reused. It does I/O: call
// it without the lock.
func (c *Coordinator) lastCheckpointID(job string, st checkpoint.Storage) int64 {
	ctx, cancel := c.storageCtx()
	defer cancel()
	var last int64
	if id, ok, err := checkpoint.Latest(ctx, st, job); err != nil {
		c.log.Warn("listing checkpoints", "job", job, "err", err)
	} else if ok {
		last = id
	}
	if c.cfg.Fence != nil {
		if id, err := c.cfg.Fence.LastID(ctx, job); err != nil {
			c.log.Warn("reading the checkpoint id from etcd", "job", job, "err", err)
		} else {
			last = max(last, id)
		}
	}
	for _, dir := range []string{job, path.Join(job, "savepoints")} {
		es, err := st.List(ctx, dir)
		if err != nil {
			continue
		}
		for _, e := range es {
			for _, prefix := range []string{"chk-", "sp-"} {
				if rest, ok := strings.CutPrefix(e.Name, prefix); ok {
					if n, err := strconv.ParseInt(rest, 10, 64); err == nil {
						last = max(last, n)
					}
				}
			}
		}
	}
	// Aborted checkpoints leave no directory, but their history record
	// (history.go) keeps the id taken.
	if es, err := st.List(ctx, path.Join(job, historyDir)); err == nil {
		for _, e := range es {
			if n, ok := parseCheckpointFile(e.Name); ok {
				last = max(last, n)
			}
		}
	}
	return last
}

// jobStateChangedLocked starts and stops checkpointing with RUNNING.
func (c *Coordinator) jobStateChangedLocked(j *jobEntry, before lifecycle.State) {
	now := c.cfg.Clock.Now()
	switch {
	case j.m.State == lifecycle.Running && before != lifecycle.Running:
		ts := make([]checkpointing.Task, 0, len(j.m.Tasks))
		for _, t := range j.m.Tasks {
			p := 1
			for _, v := range j.m.Vertices {
				if v.ID == t.Key.Vertex {
					p = v.Parallelism
				}
			}
			ts = append(ts, checkpointing.Task{Key: checkpointing.TaskKey(t.Key), Parallelism: p, Source: j.sources[t.Key]})
		}
		c.checkpointEventLocked(j, checkpointing.Running{Now: now, Attempt: j.m.Attempt, Tasks: ts})
	case before == lifecycle.Running && j.m.State != lifecycle.Running:
		why := string(j.m.State)
		if j.m.Cause != "" {
			why += ": " + j.m.Cause
		}
		c.checkpointEventLocked(j, checkpointing.Stopped{Now: now, Reason: why})
	}
	c.recordHistoryLocked(j) // history.go: restart timeline steps come with state changes
}

// checkpointEventLocked feeds the tracker and carries out its actions.
func (c *Coordinator) checkpointEventLocked(j *jobEntry, ev checkpointing.Event) error {
	acts, err := j.cp.Handle(ev)
	if err != nil {
		return err
	}
	c.checkpointActionsLocked(j, acts)
	c.recordHistoryLocked(j) // history.go: ended checkpoints, a restart's running step
	return nil
}

func (c *Coordinator) checkpointActionsLocked(j *jobEntry, acts []checkpointing.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case checkpointing.Trigger:
			c.log.Debug("checkpoint triggered", "job", j.m.ID, "checkpoint", a.ID, "savepoint", a.Savepoint, "stop", a.Stop)
			c.fenceTriggerLocked(j, a)
		case checkpointing.Abort:
			c.log.Warn("checkpoint aborted", "job", j.m.ID, "checkpoint", a.ID, "savepoint", a.Savepoint, "reason", a.Reason)
			c.toAllTasksLocked(j, a.Attempt, func(id *controlpb.TaskID) *controlpb.CoordinatorMessage {
				return &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_AbortCheckpoint{AbortCheckpoint: &controlpb.AbortCheckpoint{Task: id, CheckpointId: a.ID}}}
			})
			if c.isStopping() && !a.Savepoint {
				// Aborted because this coordinator stops: its files stay,
				// as after a crash, so the id stays taken for the
				// coordinator that takes the job over (lastCheckpointID),
				// whose retention deletes them (checkpoint.Retain).
				continue
			}
			id, st := j.m.ID, j.st
			c.goIO(j, func() {
				ctx, cancel := c.storageCtx()
				defer cancel()
				var err error
				if a.Savepoint {
					err = st.DeleteAll(ctx, checkpoint.SavepointDir(id, a.ID))
				} else {
					err = checkpoint.DeleteCheckpoint(ctx, st, id, a.ID)
				}
				if err != nil {
					c.log.Warn("deleting an aborted checkpoint", "job", id, "checkpoint", a.ID, "err", err)
				}
			})
		case checkpointing.Commit:
			c.commitLocked(j, a)
		case checkpointing.Notify:
			c.log.Info("checkpoint complete", "job", j.m.ID, "checkpoint", a.ID, "final", a.Final)
			c.notifyLocked(j, a.Attempt, a.ID, a.Final, nil, func() {
				if _, err := c.handleLocked(j, lifecycle.CheckpointCompleted{Now: c.cfg.Clock.Now(), ID: a.ID, Stop: a.Stop}); err != nil {
					c.log.Error("checkpoint complete", "job", j.m.ID, "err", err)
				}
			})
		case checkpointing.Retain:
			id, st := j.m.ID, j.st
			c.goIO(j, func() {
				ctx, cancel := c.storageCtx()
				deleted, err := checkpoint.Retain(ctx, st, id, a.Keep)
				cancel()
				if err != nil {
					c.log.Warn("deleting old checkpoints", "job", id, "err", err)
				} else if len(deleted) > 0 {
					c.log.Debug("old checkpoints deleted", "job", id, "ids", deleted)
				}
			})
		case checkpointing.FailJob:
			if err := c.applyLocked(j, lifecycle.Fail{Now: c.cfg.Clock.Now(), Cause: a.Cause}); err != nil {
				c.log.Error("failing job", "job", j.m.ID, "err", err)
			}
		}
	}
}

// commitLocked writes a checkpoint's _metadata off the lock (the rename is
// the commit point) and feeds the outcome back to the tracker as Committed.
// Until then the tracker holds the checkpoint as committing: acks, declines
// and timeouts no longer touch it, and no other checkpoint starts.
func (c *Coordinator) commitLocked(j *jobEntry, a checkpointing.Commit) {
	id, st := j.m.ID, j.st
	dir := checkpoint.CheckpointDir(id, a.ID)
	if a.Savepoint {
		dir = checkpoint.SavepointDir(id, a.ID)
	}
	c.goIO(j, func() {
		ctx, cancel := c.storageCtx()
		err := c.fence(ctx, func(f Fence) error { return f.Guard(ctx) })
		if err == nil {
			err = checkpoint.WriteMetadata(ctx, st, dir, a.Metadata)
		}
		if err == nil {
			// Crash here: the checkpoint is complete, its completion
			// not yet notified (the sinks' pre-committed transactions
			// are committed by the restore instead).
			err = failpoint.Inject(failpoint.CoordinatorAfterMetadataCommit)
		}
		if err == nil && !a.Savepoint {
			if ferr := c.fence(ctx, func(f Fence) error { return f.Completed(ctx, id, a.ID, st.URI(dir)) }); ferr != nil {
				c.log.Warn("recording the latest checkpoint in etcd", "job", id, "checkpoint", a.ID, "err", ferr)
			}
		}
		cancel()
		c.locked(j, func() {
			c.checkpointEventLocked(j, checkpointing.Committed{Now: c.cfg.Clock.Now(), ID: a.ID, URI: st.URI(dir), Err: err})
			c.settleLocked()
		})
	})
}

// toAllTasksLocked sends one message to every subtask of the attempt that
// still runs somewhere.
func (c *Coordinator) toAllTasksLocked(j *jobEntry, attempt int64, msg func(*controlpb.TaskID) *controlpb.CoordinatorMessage) {
	if attempt != j.m.Attempt {
		return
	}
	for _, t := range j.m.Tasks {
		if t.Worker != "" && !t.State.Ended() {
			c.sendLocked(t.Worker, msg(taskID(j.m.ID, attempt, t.Key)))
		}
	}
}

// notifyLocked sends NotifyCheckpointComplete(id) to one subtask of attempt
// (if it is the current one), or to all of them when to is nil, after
// checking that this coordinator still leads: sinks commit on the message,
// so one that cannot prove it leads must not send it (the checkpoint stays
// complete; the leader that restores it commits what it pre-committed).
// With a Fence the check is etcd I/O, so it runs off the lock and the
// message goes out after it; sent, when set, runs under the lock once the
// message is sent.
func (c *Coordinator) notifyLocked(j *jobEntry, attempt, id int64, final bool, to *controlpb.TaskID, sent func()) {
	send := func() {
		msg := func(tid *controlpb.TaskID) *controlpb.CoordinatorMessage {
			return &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_NotifyCheckpointComplete{
				NotifyCheckpointComplete: &controlpb.NotifyCheckpointComplete{Task: tid, CheckpointId: id, Final: final}}}
		}
		if to == nil {
			c.toAllTasksLocked(j, attempt, msg)
		} else {
			k := lifecycle.TaskKey{Vertex: to.GetVertexId(), Subtask: int(to.GetSubtask())}
			if t := j.m.Task(k); attempt == j.m.Attempt && t != nil && t.Worker != "" && !t.State.Ended() {
				c.sendLocked(t.Worker, msg(taskID(j.m.ID, attempt, k)))
			}
		}
		if sent != nil {
			sent()
		}
	}
	if c.cfg.Fence == nil {
		send()
		return
	}
	job := j.m.ID
	c.goIO(j, func() {
		ctx, cancel := c.storageCtx()
		err := c.cfg.Fence.Guard(ctx)
		cancel()
		if err != nil {
			c.log.Error("not notifying checkpoint completion", "job", job, "checkpoint", id, "err", err)
			return
		}
		c.locked(j, func() {
			send()
			c.settleLocked()
		})
	})
}

// checkpointReplyLocked routes a CheckpointAck or CheckpointDecline from a
// worker's session to the job's tracker.
func (c *Coordinator) checkpointReplyLocked(workerID string, tid *controlpb.TaskID, ev func(k checkpointing.TaskKey) checkpointing.Event) {
	j := c.jobs[tid.GetJobId()]
	if j == nil {
		return
	}
	k := lifecycle.TaskKey{Vertex: tid.GetVertexId(), Subtask: int(tid.GetSubtask())}
	if t := j.m.Task(k); t == nil || t.Worker != workerID {
		return
	}
	if err := c.checkpointEventLocked(j, ev(checkpointing.TaskKey(k))); err != nil {
		c.log.Error("checkpoint reply", "job", j.m.ID, "err", err)
	}
	c.settleLocked()
}

func (c *Coordinator) handleAckLocked(w *workerEntry, m *controlpb.CheckpointAck) {
	now := c.cfg.Clock.Now()
	c.checkpointReplyLocked(w.id, m.GetTask(), func(k checkpointing.TaskKey) checkpointing.Event {
		return checkpointing.Ack{Now: now, Attempt: m.GetTask().GetAttempt(), ID: m.GetCheckpointId(), Task: k, Operators: m.GetOperators(), Stats: m.GetStats(), EndOfInput: m.GetEndOfInput()}
	})
}

func (c *Coordinator) handleDeclineLocked(w *workerEntry, m *controlpb.CheckpointDecline) {
	now := c.cfg.Clock.Now()
	c.checkpointReplyLocked(w.id, m.GetTask(), func(k checkpointing.TaskKey) checkpointing.Event {
		return checkpointing.Decline{Now: now, Attempt: m.GetTask().GetAttempt(), ID: m.GetCheckpointId(), Task: k, Reason: m.GetReason()}
	})
}

// Errors of savepoint requests, mapped to HTTP statuses by the REST layer.
var errSavepointConflict = errors.New("coordinator: savepoint not possible now")

// triggerSavepoint asks for a savepoint of a running job and returns the
// request id to poll.
func (c *Coordinator) triggerSavepoint(jobID string, stop bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.jobs[jobID]
	if j == nil {
		return "", errUnknownJob
	}
	// One name for one savepoint: the request is named as its directory
	// (savepoints/sp-<id>), the id the tracker takes for it now.
	rid := fmt.Sprintf("sp-%d", j.cp.NextID())
	err := c.checkpointEventLocked(j, checkpointing.TriggerSavepoint{Now: c.cfg.Clock.Now(), RequestID: rid, Stop: stop})
	switch {
	case errors.Is(err, checkpointing.ErrNotRunning):
		return "", fmt.Errorf("%w: job %s is %s; savepoints need a RUNNING job", errSavepointConflict, jobID, j.m.State)
	case errors.Is(err, checkpointing.ErrStopping), errors.Is(err, checkpointing.ErrTaskEnded), errors.Is(err, checkpointing.ErrInputEnded):
		return "", fmt.Errorf("%w: %w", errSavepointConflict, err)
	case err != nil:
		return "", err
	}
	c.settleLocked()
	return rid, nil
}

// Fence is a coordinator's proof of leadership when several coordinators
// share a cluster (coordinator/ha). Steps that two coordinators must never
// both take are fenced: recording a checkpoint id before its trigger,
// committing a checkpoint's _metadata, notifying its completion.
type Fence interface {
	// Trigger records checkpoint id n of a job as used.
	Trigger(ctx context.Context, job string, n int64) error
	// Guard proves this coordinator leads right now.
	Guard(ctx context.Context) error
	// Completed records checkpoint n at uri as the job's latest.
	Completed(ctx context.Context, job string, n int64, uri string) error
	// LastID is the highest checkpoint id recorded for a job.
	LastID(ctx context.Context, job string) (int64, error)
}

// fence runs step with the configured Fence; without one (a single
// coordinator) there is nothing to prove.
func (c *Coordinator) fence(_ context.Context, step func(Fence) error) error {
	if c.cfg.Fence == nil {
		return nil
	}
	return step(c.cfg.Fence)
}

// fenceTriggerLocked records a triggered checkpoint's id (etcd I/O, off
// the lock) and then sends TriggerCheckpoint to every source subtask; when
// the id cannot be recorded, the checkpoint is declined on behalf of a
// source, so it aborts at once.
func (c *Coordinator) fenceTriggerLocked(j *jobEntry, a checkpointing.Trigger) {
	if c.cfg.Fence == nil {
		c.sendTriggersLocked(j, a)
		return
	}
	job := j.m.ID
	c.goIO(j, func() {
		ctx, cancel := c.storageCtx()
		err := c.cfg.Fence.Trigger(ctx, job, a.ID)
		cancel()
		c.locked(j, func() {
			defer c.settleLocked()
			if err == nil {
				c.sendTriggersLocked(j, a)
				return
			}
			c.log.Error("checkpoint not triggered", "job", j.m.ID, "checkpoint", a.ID, "err", err)
			for k := range j.sources {
				c.checkpointEventLocked(j, checkpointing.Decline{Now: c.cfg.Clock.Now(), Attempt: a.Attempt, ID: a.ID,
					Task: checkpointing.TaskKey(k), Reason: "the coordinator could not record the checkpoint id: " + err.Error()})
				break
			}
		})
	})
}

func (c *Coordinator) sendTriggersLocked(j *jobEntry, a checkpointing.Trigger) {
	if a.Attempt != j.m.Attempt {
		return
	}
	for _, t := range j.m.Tasks {
		if j.sources[t.Key] && t.Worker != "" && !t.State.Ended() {
			c.sendLocked(t.Worker, &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_TriggerCheckpoint{TriggerCheckpoint: &controlpb.TriggerCheckpoint{
				Task: taskID(j.m.ID, a.Attempt, t.Key), CheckpointId: a.ID, TimestampUnixMs: a.Timestamp.UnixMilli(),
				Savepoint: a.Savepoint, Stop: a.Stop,
			}}})
		}
	}
}
