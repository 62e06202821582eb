package coordinator

import (
	"errors"
	"fmt"

	"github.com/weir-stream/weir/coordinator/jobstore"
	"github.com/weir-stream/weir/coordinator/lifecycle"
)

// recordEndLocked writes a job's terminal state to the job store, so a
// coordinator that starts again shows it ended and does not resume it. A
// failed write is logged: the job has ended here either way, and the next
// coordinator would resume it from its latest checkpoint, which for a
// finished job re-reads nothing new.
func (c *Coordinator) recordEndLocked(j *jobEntry) {
	rec := j.rec
	rec.Desired, rec.State, rec.Cause, rec.EndedAt = jobstore.Ended, string(j.m.State), j.m.Cause, j.m.EndedAt
	rec.Attempt, rec.StartedAt = max(rec.Attempt, j.m.Attempt), j.m.StartedAt
	ctx, cancel := c.storageCtx()
	defer cancel()
	if err := c.jobStore.Put(ctx, &rec); err != nil {
		c.log.Error("recording the end of a job", "job", j.m.ID, "state", j.m.State, "err", err)
		return
	}
	j.rec = rec
}

// recordAttemptLocked writes the attempt being deployed to the job store.
// A failed write is logged: a coordinator that takes over then continues
// from an older attempt number, and workers that saw the newer one refuse
// its channels once, which costs one more restart, not correctness.
func (c *Coordinator) recordAttemptLocked(j *jobEntry) {
	if j.m.Attempt <= j.rec.Attempt {
		return
	}
	rec := j.rec
	rec.Attempt = j.m.Attempt
	ctx, cancel := c.storageCtx()
	defer cancel()
	if err := c.jobStore.Put(ctx, &rec); err != nil {
		c.log.Warn("recording the attempt of a job", "job", j.m.ID, "attempt", j.m.Attempt, "err", err)
		return
	}
	j.rec = rec
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
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rec := range recs {
		if c.jobs[rec.ID] != nil {
			continue
		}
		if err := c.resumeLocked(*rec); err != nil {
			c.log.Error("job store: cannot take over job", "job", rec.ID, "name", rec.Name, "err", err)
		}
	}
	// Jobs that ended past the retention while no coordinator ran (or
	// whose removal failed) go before the REST API lists them.
	c.evictEndedLocked()
	return nil
}

func (c *Coordinator) resumeLocked(rec jobstore.Record) error {
	job, g, apiErr := c.compile(rec.Spec)
	if apiErr != nil {
		return apiErr
	}
	st, err := c.storeLocked(c.storageURI(rec.StorageURI))
	if err != nil {
		return fmt.Errorf("checkpoint storage: %w", err)
	}
	var initial *lifecycle.RestorePoint
	if rec.SavepointURI != "" {
		initial = &lifecycle.RestorePoint{CheckpointID: rec.SavepointID, URI: rec.SavepointURI}
	}
	j := c.registerLocked(rec, job, g, st, initial)
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

// storageURI is the root a job's checkpoints go to.
func (c *Coordinator) storageURI(specURI string) string {
	if specURI == "" {
		return c.cfg.CheckpointStorage
	}
	return specURI
}
