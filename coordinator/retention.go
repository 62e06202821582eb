package coordinator

import (
	"slices"
	"time"
)

// Retention of ended jobs. A coordinator that ran for months would
// otherwise keep every job it ever ran: in memory, in the job store, in
// the REST job list, and as series on /metrics (probing found 36,584
// lines of /metrics after ~150 jobs).
//
// An ended job (FINISHED, FAILED, CANCELLED) is forgotten once it ended
// more than Config.JobRetention ago, or once Config.RetainedJobs jobs have
// ended after it. Forgetting removes its job store record first, then the
// job from memory, so a coordinator that starts again does not list it;
// its /metrics series go with it, since the collector reads the jobs at
// scrape time. Its checkpoints and savepoints stay in checkpoint storage:
// they may still be restored from (weir submit --from-savepoint).

// evictRetryDelay spaces out attempts to remove a job whose job store
// record could not be deleted.
const evictRetryDelay = time.Minute

func (c *Coordinator) evictEnded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evictEndedLocked()
}

// evictEndedLocked forgets the ended jobs past the retention.
func (c *Coordinator) evictEndedLocked() {
	now := c.cfg.Clock.Now()
	var ended []*jobEntry
	for _, id := range c.order {
		if j := c.jobs[id]; j.m.State.Terminal() {
			ended = append(ended, j)
		}
	}
	// Most recently ended first; among equal end times, the later
	// submission first.
	slices.SortStableFunc(ended, func(a, b *jobEntry) int { return b.m.EndedAt.Compare(a.m.EndedAt) })
	for i, j := range ended {
		tooMany := c.cfg.RetainedJobs >= 0 && i >= c.cfg.RetainedJobs
		tooOld := c.cfg.JobRetention >= 0 && now.Sub(j.m.EndedAt) > c.cfg.JobRetention
		if (tooMany || tooOld) && !now.Before(j.evictRetry) && !j.evicting {
			c.evictLocked(j, now, tooMany)
		}
	}
}

// evictLocked removes the job's record from the job store on its I/O
// queue (after its other writes), then forgets the job.
func (c *Coordinator) evictLocked(j *jobEntry, now time.Time, tooMany bool) {
	id := j.m.ID
	j.evicting = true
	c.goIO(j, func() {
		ctx, cancel := c.storageCtx()
		err := c.jobStore.Delete(ctx, id)
		cancel()
		c.locked(j, func() {
			j.evicting = false
			if err != nil {
				// Kept, so that the store and the REST API agree; tried again.
				j.evictRetry = now.Add(evictRetryDelay)
				c.log.Warn("retention: cannot remove an ended job from the job store; retrying", "job", id, "err", err, "in", evictRetryDelay)
				return
			}
			delete(c.jobs, id)
			c.order = slices.DeleteFunc(c.order, func(o string) bool { return o == id })
			why := "ended more than the job retention ago"
			if tooMany {
				why = "more recently ended jobs than retained"
			}
			c.log.Info("retention: ended job forgotten", "job", id, "name", j.m.Name, "state", j.m.State,
				"ended_at", j.m.EndedAt, "reason", why, "retained_jobs", c.cfg.RetainedJobs, "job_retention", c.cfg.JobRetention)
		})
	})
}
