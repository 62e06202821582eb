package coordinator

import (
	"sync"
	"time"
)

// Storage and etcd I/O never runs under the coordinator's lock (c.mu): a
// slow HDFS, S3 or etcd call (bounded by StorageTimeout, 30 s by default)
// would otherwise hold up heartbeats, liveness ticks, task reports and
// REST reads for longer than the heartbeat timeout, and healthy workers
// would be declared lost. Instead each job has an I/O queue: the driver,
// under c.mu, queues a step (write _metadata, delete an aborted
// checkpoint, write a history file, put the job record, choose the
// checkpoint to restore); one goroutine per job with work runs its steps
// in the order queued, each without the lock, and feeds the outcome back
// to the job under c.mu as an event (checkpointing.Committed, a restore
// point, a written record). The order per job is what the old code got
// from the lock: a checkpoint's _metadata is committed before its
// retention deletes older ones, a job's attempt is recorded before its
// end. Different jobs' I/O runs in parallel.
// docs/design/0007-coordinator-concurrency.md has the whole design.

// ioQueue is one job's queue of I/O steps.
type ioQueue struct {
	mu      sync.Mutex
	steps   []func()
	running bool
}

// goIO queues step to run off the lock after the job's earlier steps. A
// step takes c.mu itself to apply what it found. After Stop nothing new
// starts; steps already queued still run (with a cancelled context they
// fail fast), so none is lost silently while the coordinator lives.
func (c *Coordinator) goIO(j *jobEntry, step func()) {
	q := j.io
	q.mu.Lock()
	q.steps = append(q.steps, step)
	if q.running {
		q.mu.Unlock()
		return
	}
	if !c.enterIO() {
		q.steps = nil
		q.mu.Unlock()
		return
	}
	q.running = true
	q.mu.Unlock()
	go func() {
		defer c.ioWG.Done()
		for {
			q.mu.Lock()
			if len(q.steps) == 0 {
				q.running = false
				q.mu.Unlock()
				return
			}
			s := q.steps[0]
			q.steps = q.steps[1:]
			q.mu.Unlock()
			s()
		}
	}()
}

// ioIdle reports whether the job has no I/O queued or running (tests and
// retention: a job is forgotten only once its I/O is done).
func (q *ioQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.running && len(q.steps) == 0
}

// locked runs f under c.mu if the job is still the coordinator's (not
// forgotten by retention meanwhile).
func (c *Coordinator) locked(j *jobEntry, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs[j.m.ID] != j {
		return
	}
	f()
}

// ioGuard admits I/O goroutines until Stop. It is not the process's life
// lock, which Start holds while it resumes jobs (and queues their I/O).
type ioGuard struct {
	mu      sync.Mutex
	stopped bool
}

func (c *Coordinator) enterIO() bool {
	c.ioGuard.mu.Lock()
	defer c.ioGuard.mu.Unlock()
	if c.ioGuard.stopped {
		return false
	}
	c.ioWG.Add(1)
	return true
}

// stopIO waits for every job's I/O goroutine; called by Stop once nothing
// else can queue I/O. What is queued (a history record, a job's end) is
// still written, as the lock-holding code wrote it before Stop returned;
// a storage that does not answer within the storage timeout gets its
// calls cancelled.
func (c *Coordinator) stopIO() {
	c.ioGuard.mu.Lock()
	c.ioGuard.stopped = true
	c.ioGuard.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.ioWG.Wait()
		close(done)
	}()
	t := time.NewTimer(c.cfg.StorageTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.ioCancel()
		<-done
	}
	c.ioCancel()
}
