package coordinator

import (
	"errors"
	"fmt"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"

	"github.com/weir-stream/weir/coordinator/jobstore"
	"github.com/weir-stream/weir/coordinator/lifecycle"
)

// recordEndLocked writes a job's terminal state to the job store, so a
// coordinator that starts again shows it ended and does not resume it. A
// failed write is logged: the job has ended here either way, and the next
// coordinator would resume it from its latest checkpoint, which for a
// finished job re-reads nothing new.
func (c *Coordinator) recordEndLocked(j *jobEntry) {
	rec := &j.rec
	rec.Desired, rec.State, rec.Cause, rec.EndedAt = jobstore.Ended, string(j.m.State), j.m.Cause, j.m.EndedAt
	rec.Attempt, rec.StartedAt = max(rec.Attempt, j.m.Attempt), j.m.StartedAt
	c.persistLocked(j, nil)
}

// recordAttemptLocked writes the attempt being deployed to the job store.
// A failed write is logged: a coordinator that takes over then continues
// from an older attempt number, and workers that saw the newer one refuse
// its channels once, which costs one more restart, not correctness.
func (c *Coordinator) recordAttemptLocked(j *jobEntry) {
	if j.m.Attempt <= j.rec.Attempt {
		return
	}
	j.rec.Attempt = j.m.Attempt
	c.persistLocked(j, nil)
}

// persistLocked writes the job's record (j.rec, what the job store should
// hold) on the job's I/O queue. The record is read when the write runs,
// so the last write of a job always carries its newest record whatever
// was changed meanwhile. done, when set, gets the outcome.
func (c *Coordinator) persistLocked(j *jobEntry, done chan<- error) {
	c.goIO(j, func() {
		c.mu.Lock()
		rec := j.rec
		c.mu.Unlock()
		ctx, cancel := c.storageCtx()
		err := c.jobStore.Put(ctx, &rec)
		cancel()
		if err != nil {
			c.log.Error("writing the job store record", "job", rec.ID, "desired", rec.Desired, "state", rec.State, "attempt", rec.Attempt, "err", err)
		}
		if done != nil {
			done <- err
		}
	})
}

// resumeJobs takes over the jobs of the job store when the coordinator
// starts: ended jobs are listed as they ended; jobs that should run are
// scheduled and restore from their latest completed checkpoint (or the
// savepoint they were submitted with); jobs whose cancel was recorded end
// CANCELLED. A record that cannot be read, or whose spec no longer
// compiles, is logged with its reason and left in the store untouched.
// Only a store that cannot be listed at all stops the start.
func (c *Coordinator) resumeJobs() error {
	ctx, cancel := c.storageCtx()
	recs, err := c.jobStore.List(ctx)
	cancel()
	var le *jobstore.ListError
	if errors.As(err, &le) {
		for _, p := range le.Problems {
			c.log.Error("job store: record skipped", "problem", p)
		}
	} else if err != nil {
		return fmt.Errorf("coordinator: reading the job store: %w", err)
	}
	for _, rec := range recs {
		if err := c.resume(*rec); err != nil {
			c.log.Error("job store: cannot take over job", "job", rec.ID, "name", rec.Name, "err", err)
		}
	}
	// Jobs that ended past the retention while no coordinator ran (or
	// whose removal failed) go before the REST API lists them.
	c.mu.Lock()
	c.evictEndedLocked()
	var barriers []chan struct{}
	for _, j := range c.jobs {
		b := make(chan struct{})
		barriers = append(barriers, b)
		c.goIO(j, func() { close(b) })
	}
	c.mu.Unlock()
	// Start returns once the take-over's reads and writes (history,
	// records of ended jobs, evictions) are done, as it did when they ran
	// under the lock.
	for _, b := range barriers {
		<-b
	}
	return nil
}

// resume takes over one job of the job store: the storage I/O (opening
// its storage, finding its last checkpoint id) runs without the lock,
// before the job is registered.
func (c *Coordinator) resume(rec jobstore.Record) error {
	c.mu.Lock()
	known := c.jobs[rec.ID] != nil
	c.mu.Unlock()
	if known {
		return nil
	}
	job, g, apiErr := c.compile(rec.Spec)
	if apiErr != nil {
		return apiErr
	}
	st, err := c.jobStorage(rec.StorageURI)
	if err != nil {
		return err
	}
	var last int64
	if rec.Desired != jobstore.Ended && rec.Desired != jobstore.Cancel {
		last = c.lastCheckpointID(rec.ID, st)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs[rec.ID] != nil {
		return nil
	}
	return c.resumeLocked(rec, job, g, st, last)
}

func (c *Coordinator) resumeLocked(rec jobstore.Record, job *spec.Job, g *graph.Graph, st checkpoint.Storage, last int64) error {
	var initial *lifecycle.RestorePoint
	if rec.SavepointURI != "" {
		initial = &lifecycle.RestorePoint{CheckpointID: rec.SavepointID, URI: rec.SavepointURI}
	}
	j := c.registerLocked(rec, job, g, st, initial, last)
	c.loadHistoryLocked(j)
	switch rec.Desired {
	case jobstore.Ended:
		m, err := lifecycle.Ended(rec.ID, rec.Name, j.m.Vertices, rec.SubmittedAt, lifecycle.State(rec.State), rec.Cause, rec.EndedAt)
		if err != nil {
			return err
		}
		// What the job was stays as it was shown before the restart: its
		// last attempt, start, restart strategy and checkpointing.
		m.Attempt, m.StartedAt, m.Strategy, m.Checkpointing = rec.Attempt, rec.StartedAt, j.m.Strategy, j.m.Checkpointing
		j.m = m
		c.log.Info("job store: ended job listed", "job", rec.ID, "name", rec.Name, "state", rec.State)
		return nil
	case jobstore.Cancel:
		// Cancelled while the previous coordinator ran; its tasks died
		// with their sessions.
		now := c.cfg.Clock.Now()
		m, err := lifecycle.Ended(rec.ID, rec.Name, j.m.Vertices, rec.SubmittedAt, lifecycle.Cancelled, "cancelled by the user", now)
		if err != nil {
			return err
		}
		m.Attempt, m.StartedAt, m.Strategy, m.Checkpointing = rec.Attempt, rec.StartedAt, j.m.Strategy, j.m.Checkpointing
		j.m = m
		c.recordEndLocked(j)
		return nil
	}
	j.resumed = true
	j.m.Attempt = rec.Attempt // the next attempt deployed is rec.Attempt+1
	// Its last attempt may still run on workers that will register within
	// their reconnect grace: wait for them to report it (reconcile.go).
	if c.cfg.AdoptWindow > 0 {
		j.adoptUntil = c.cfg.Clock.Now().Add(c.cfg.AdoptWindow)
	}
	c.log.Info("job store: resuming job", "job", rec.ID, "name", rec.Name, "after_attempt", rec.Attempt)
	return c.applyLocked(j, lifecycle.Schedule{Now: c.cfg.Clock.Now()})
}
