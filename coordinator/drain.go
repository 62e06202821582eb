package coordinator

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/checkpointing"
	"github.com/weir-stream/weir/coordinator/lifecycle"
	"github.com/weir-stream/weir/coordinator/scheduler"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// Draining a worker (docs/failover.md, "Draining a worker"): a worker
// that got SIGTERM sends DrainRequest, or an operator calls POST
// /api/v1/workers/{id}/drain. From then on:
//
//  1. nothing more is placed on it (freeSlotsLocked skips it);
//  2. on every tick, each RUNNING job with a subtask there is checked: if
//     the other workers have room for the whole job, the coordinator asks
//     its tracker for a stop checkpoint (checkpointing.TriggerStop) and
//     tells its lifecycle (lifecycle.DrainStop). If they have no room, the
//     job keeps running where it is and the worker shows why it waits;
//  3. the sources stop at the checkpoint's barrier, the checkpoint
//     completes (the sinks commit), every subtask finishes, and the job
//     restarts at once, restart reason "drain", restoring that checkpoint
//     on the other workers: nothing after its barrier was read, so nothing
//     is replayed;
//  4. the worker exits once it holds no subtask.
//
// A stop checkpoint that fails resumes the sources; the drain tries again
// after drainRetry. A subtask that fails meanwhile fails the job as usual
// (a failure restart, away from the draining worker).

// drainRetry is how long a drain waits before a new stop checkpoint when
// one failed: a checkpoint that was declined once is likely to be again
// if asked at once.
const drainRetry = time.Second

// errUnknownWorker is mapped to 404 by the REST layer.
var errUnknownWorker = errors.New("coordinator: unknown worker")

// workerDrain is a draining worker.
type workerDrain struct {
	reason string
	since  time.Time
	// waiting says why a job has not moved yet ("" while nothing waits).
	waiting string
	// retryAt: per job, no new stop checkpoint before then.
	retryAt map[string]time.Time
}

// drainLocked starts draining a registered worker (again is a no-op) and
// tells it so, and reports whether it was new.
func (c *Coordinator) drainLocked(id, reason string) (bool, error) {
	w := c.workers[id]
	if w == nil {
		return false, fmt.Errorf("%w: %q is not registered", errUnknownWorker, id)
	}
	if c.drains == nil {
		c.drains = map[string]*workerDrain{}
	}
	if c.drains[id] != nil {
		return false, nil
	}
	c.drains[id] = &workerDrain{reason: reason, since: c.cfg.Clock.Now(), retryAt: map[string]time.Time{}}
	c.log.Info("worker draining", "worker", id, "reason", reason)
	c.sendLocked(id, &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_DrainStarted{DrainStarted: &controlpb.DrainStarted{Reason: reason}}})
	c.drainTickLocked()
	c.settleLocked()
	return true, nil
}

// maxDrainReason bounds the reason a worker gives for its drain: it is
// logged and shown on the REST API.
const maxDrainReason = 128

// drainReason makes a worker's DrainRequest.reason fit to show: valid
// UTF-8, no control characters, at most maxDrainReason bytes; empty
// becomes "requested by the worker".
func drainReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > maxDrainReason {
		cut := maxDrainReason
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	if strings.TrimSpace(s) == "" {
		return "requested by the worker"
	}
	return s
}

// drainingLocked reports whether a worker is draining: the scheduler
// places nothing on it.
func (c *Coordinator) drainingLocked(id string) bool { return c.drains[id] != nil }

// forgetDrainLocked ends a drain when its worker leaves: a worker that
// registers again under the id starts afresh (a draining one asks again).
func (c *Coordinator) forgetDrainLocked(id string) { delete(c.drains, id) }

// drainTickLocked moves the jobs off every draining worker, one stop
// checkpoint per job at a time.
func (c *Coordinator) drainTickLocked() {
	if len(c.drains) == 0 {
		return
	}
	now := c.cfg.Clock.Now()
	ids := make([]string, 0, len(c.drains))
	for id := range c.drains {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, wid := range ids {
		d := c.drains[wid]
		var waits []string
		for _, jid := range c.order {
			j := c.jobs[jid]
			if !runsOn(j.m, wid) {
				delete(d.retryAt, jid)
				continue
			}
			if why := c.drainJobLocked(j, wid, d, now); why != "" {
				waits = append(waits, fmt.Sprintf("job %s %s", jid, why))
			}
		}
		waiting := strings.Join(waits, "; ")
		if waiting != d.waiting && waiting != "" {
			c.log.Info("drain waits", "worker", wid, "why", waiting)
		}
		d.waiting = waiting
	}
}

// drainJobLocked takes one step of moving job j off worker wid and says
// what it waits for ("" when nothing).
func (c *Coordinator) drainJobLocked(j *jobEntry, wid string, d *workerDrain, now time.Time) string {
	if j.m.State != lifecycle.Running {
		return "is " + string(j.m.State)
	}
	if j.m.Draining() != "" {
		if j.cp.Stopping() {
			return "" // the stop checkpoint is in flight, or the subtasks are finishing
		}
		// The stop checkpoint failed: the sources resumed.
		if _, err := c.handleLocked(j, lifecycle.DrainAbandoned{Now: now}); err != nil {
			c.log.Error("drain", "job", j.m.ID, "err", err)
		}
		d.retryAt[j.m.ID] = now.Add(drainRetry)
		c.log.Warn("the stop checkpoint for a drain failed; trying again", "job", j.m.ID, "worker", wid, "in", drainRetry)
		return "keeps running here: its stop checkpoint failed; trying again"
	}
	if now.Before(d.retryAt[j.m.ID]) {
		return "keeps running here: its stop checkpoint failed; trying again"
	}
	if why := c.roomElsewhereLocked(j); why != "" {
		return "keeps running here: " + why
	}
	if _, err := c.handleLocked(j, lifecycle.DrainStop{Now: now, Worker: wid}); err != nil {
		return "cannot stop: " + err.Error()
	}
	if err := c.checkpointEventLocked(j, checkpointing.TriggerStop{Now: now}); err != nil {
		if _, aerr := c.handleLocked(j, lifecycle.DrainAbandoned{Now: now}); aerr != nil {
			c.log.Error("drain", "job", j.m.ID, "err", aerr)
		}
		d.retryAt[j.m.ID] = now.Add(drainRetry)
		return "cannot take a stop checkpoint yet: " + err.Error()
	}
	c.log.Info("job stopping at a checkpoint for a drain", "job", j.m.ID, "worker", wid)
	return ""
}

// runsOn reports whether a subtask of the job's current attempt holds a
// slot on the worker.
func runsOn(m *lifecycle.Job, worker string) bool {
	for _, t := range m.Tasks {
		if t.Worker == worker && !t.State.Ended() {
			return true
		}
	}
	return false
}

// roomElsewhereLocked says why the job cannot be placed on the workers
// that are not draining ("" when it can): their free slots plus the ones
// the job itself holds there now, which its restart frees.
func (c *Coordinator) roomElsewhereLocked(j *jobEntry) string {
	own := map[string]map[int]bool{}
	for _, t := range j.m.Tasks {
		if t.Worker != "" && !t.State.Ended() {
			if own[t.Worker] == nil {
				own[t.Worker] = map[int]bool{}
			}
			own[t.Worker][t.Key.Subtask] = true
		}
	}
	ws := c.freeSlotsLocked()
	for i := range ws {
		ws[i].Free += len(own[ws[i].ID])
	}
	reqs := make([]scheduler.Request, 0, len(j.m.Vertices))
	for _, v := range j.m.Vertices {
		reqs = append(reqs, scheduler.Request{Vertex: v.ID, Parallelism: v.Parallelism})
	}
	if _, err := scheduler.Place(reqs, c.jobNeedLocked(j), ws); err != nil {
		var ie *scheduler.InsufficientSlotsError
		if errors.As(err, &ie) {
			return fmt.Sprintf("it needs %d slots on other workers, %d free", ie.Needed, ie.Free)
		}
		return err.Error()
	}
	return ""
}

// drainInfoLocked fills in a draining worker's state for the REST API.
func (c *Coordinator) drainInfoLocked(w *api.Worker) {
	d := c.drains[w.ID]
	if d == nil {
		return
	}
	w.State = "DRAINING"
	w.Drain = &api.WorkerDrain{Reason: d.reason, Since: d.since, Waiting: d.waiting}
}

// handleDrainWorker serves POST /api/v1/workers/{id}/drain.
func (c *Coordinator) handleDrainWorker(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	_, err := c.drainLocked(id, "requested over the REST API")
	var out api.Worker
	if err == nil {
		for _, aw := range c.workersLocked() {
			if aw.ID == id {
				out = aw
			}
		}
	}
	c.mu.Unlock()
	if err != nil {
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: fmt.Sprintf("worker %q not found (weir workers lists them)", id)})
		return
	}
	writeJSON(w, http.StatusAccepted, out)
}
