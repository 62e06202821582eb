package coordinator

import (
	"fmt"
	"sync"
	"time"
)

// liveness guards when each worker was last heard from (workerEntry.
// lastSeen), apart from the coordinator's main lock: a session stamps it
// as each message arrives, before the message waits for c.mu, and the
// liveness check of a tick reads it without c.mu, so neither waits for a
// job's work. The registry's membership (c.workers) changes only under
// both locks, so holding either one is enough to read it.
type liveness struct {
	mu sync.Mutex
}

// seen records that a message from w arrived now.
func (c *Coordinator) seen(w *workerEntry) {
	now := c.cfg.Clock.Now()
	c.live.mu.Lock()
	w.lastSeen = now
	c.live.mu.Unlock()
}

// lastSeen is when w was last heard from.
func (c *Coordinator) lastSeen(w *workerEntry) time.Time {
	c.live.mu.Lock()
	defer c.live.mu.Unlock()
	return w.lastSeen
}

// silentWorkers lists the workers silent past the heartbeat timeout, with
// the session each was found in. It takes only the liveness lock.
func (c *Coordinator) silentWorkers(now time.Time) map[*workerEntry]string {
	c.live.mu.Lock()
	defer c.live.mu.Unlock()
	var out map[*workerEntry]string
	for _, w := range c.workers {
		if silent := now.Sub(w.lastSeen); silent > c.cfg.HeartbeatTimeout {
			if out == nil {
				out = map[*workerEntry]string{}
			}
			out[w] = fmt.Sprintf("no heartbeat for %s (timeout %s)", silent, c.cfg.HeartbeatTimeout)
		}
	}
	return out
}

// putWorkerLocked and deleteWorkerLocked change the registry's membership
// under both locks.
func (c *Coordinator) putWorkerLocked(w *workerEntry) {
	c.live.mu.Lock()
	c.workers[w.id] = w
	c.live.mu.Unlock()
}

func (c *Coordinator) deleteWorkerLocked(id string) {
	c.live.mu.Lock()
	delete(c.workers, id)
	c.live.mu.Unlock()
}
