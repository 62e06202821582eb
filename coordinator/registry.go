package coordinator

import (
	"context"
	"sort"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/scheduler"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// outboxSize bounds the messages queued for one worker. A worker that falls
// this far behind is treated as lost rather than blocking the driver.
const outboxSize = 4096

// workerEntry is one registered worker and its live session.
type workerEntry struct {
	id, dataAddr, httpAddr, version string
	slots                           int
	registeredAt, lastSeen          time.Time
	session                         uint64
	out                             chan *controlpb.CoordinatorMessage
	// kill ends the session (the stream's context).
	kill context.CancelFunc
	// operators are the user operators its binary carries (operators.go).
	operators []*controlpb.Operator
	goVersion string
}

// slotsUsedLocked counts the tasks that occupy a slot on each worker: placed
// and not yet ended, over all jobs.
func (c *Coordinator) slotsUsedLocked() map[string]int {
	used := map[string]int{}
	for _, j := range c.jobs {
		for _, t := range j.m.Tasks {
			if t.Worker != "" && !t.State.Ended() {
				used[t.Worker]++
			}
		}
	}
	return used
}

func (c *Coordinator) freeSlotsLocked() []scheduler.Worker {
	used := c.slotsUsedLocked()
	ws := make([]scheduler.Worker, 0, len(c.workers))
	for _, w := range c.workers {
		ws = append(ws, scheduler.Worker{ID: w.id, Free: max(w.slots-used[w.id], 0), Operators: operatorVersions(w.operators)})
	}
	return ws
}

// workersLocked renders the registry, sorted by id.
func (c *Coordinator) workersLocked() []api.Worker {
	used := c.slotsUsedLocked()
	out := make([]api.Worker, 0, len(c.workers))
	for _, w := range c.workers {
		out = append(out, api.Worker{
			ID: w.id, DataAddr: w.dataAddr, HTTPAddr: w.httpAddr, Version: w.version,
			Slots: w.slots, SlotsUsed: used[w.id], State: "ALIVE",
			RegisteredAt: w.registeredAt, LastHeartbeat: w.lastSeen,
			GoVersion: w.goVersion, Operators: renderOperators(w.operators),
		})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// sendLocked queues msg for a worker. A worker that is gone or whose queue
// is full is recorded as lost, to be handled after the current dispatch.
func (c *Coordinator) sendLocked(workerID string, msg *controlpb.CoordinatorMessage) {
	w := c.workers[workerID]
	if w == nil {
		c.lost = append(c.lost, lostWorker{workerID, "not connected"})
		return
	}
	select {
	case w.out <- msg:
	default:
		c.lost = append(c.lost, lostWorker{workerID, "control messages backed up"})
	}
}
