package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/checkpointing"
	"github.com/weir-stream/weir/coordinator/lifecycle"
)

// handleCheckpoints serves GET /api/v1/jobs/{id}/checkpoints.
func (c *Coordinator) handleCheckpoints(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	j := c.jobs[id]
	var out api.Checkpoints
	if j != nil {
		out = c.renderCheckpointsLocked(j)
	}
	c.mu.Unlock()
	if j == nil {
		writeError(w, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// renderCheckpointsLocked merges the tracker's live history with the
// persisted records of earlier coordinators (history.go).
func (c *Coordinator) renderCheckpointsLocked(j *jobEntry) api.Checkpoints {
	cfg := j.cp.Config()
	h := c.historyLocked(j)
	out := api.Checkpoints{
		Counts: c.countsLocked(j, h),
		Config: api.CheckpointConfig{
			Enabled: j.m.Checkpointing, IntervalMs: cfg.Interval.Milliseconds(), TimeoutMs: cfg.Timeout.Milliseconds(),
			MinPauseMs: cfg.MinPause.Milliseconds(), TolerableFailures: cfg.TolerableFailures, Retained: cfg.Retained,
			Storage: j.st.URI(""),
		},
		History: []api.CheckpointStats{},
	}
	if l := j.cp.Latest(); l != nil {
		s := renderCheckpoint(l)
		out.Latest = &s
	}
	if rp := j.m.Restore; rp != nil {
		out.LatestRestore = &api.RestoreInfo{Attempt: j.m.Attempt, CheckpointID: rp.CheckpointID, Location: rp.URI, Fallback: rp.Fallback}
	}
	for _, c := range slices.Backward(j.cp.History()) {
		out.History = append(out.History, renderCheckpoint(c))
	}
	past := c.pastCheckpointsLocked(j, h)
	for _, d := range past {
		if len(out.History) >= checkpointing.DefaultHistory {
			break
		}
		out.History = append(out.History, d.CheckpointStats)
	}
	slices.SortStableFunc(out.History, func(a, b api.CheckpointStats) int { return int(b.ID - a.ID) })
	if out.Latest == nil {
		for _, d := range past {
			if d.Status == string(checkpointing.Completed) {
				s := d.CheckpointStats
				out.Latest = &s
				break
			}
		}
	}
	return out
}

func renderCheckpoint(c *checkpointing.Checkpoint) api.CheckpointStats {
	s := api.CheckpointStats{
		ID: c.ID, Status: string(c.Status), Savepoint: c.Savepoint, Stop: c.Stop, Final: c.Final, Attempt: c.Attempt,
		TriggerTime: c.Trigger, EndTime: timePtr(c.End), DurationMs: c.Duration().Milliseconds(), SizeBytes: c.Size,
		Subtasks: len(c.Subtasks), MaxAlignmentMs: c.MaxAlignmentMs(),
		FailureReason: string(c.Reason), Failure: c.Failure, Location: c.URI,
	}
	for _, st := range c.Subtasks {
		if st.Acked {
			s.Acknowledged++
		}
	}
	if k, d, ok := c.Slowest(); ok {
		s.SlowestSubtask, s.SlowestMs = k.String(), d.Milliseconds()
	}
	return s
}

func renderCheckpointDetail(cp *checkpointing.Checkpoint) api.CheckpointDetail {
	out := api.CheckpointDetail{CheckpointStats: renderCheckpoint(cp), SubtaskStats: make([]api.SubtaskCheckpoint, 0, len(cp.Subtasks))}
	for _, s := range cp.Subtasks {
		sc := api.SubtaskCheckpoint{Vertex: s.Task.Vertex, Subtask: s.Task.Subtask, Acknowledged: s.Acked,
			SyncMs: s.SyncMs, AsyncMs: s.AsyncMs, AlignmentMs: s.AlignmentMs, Bytes: s.Bytes}
		if s.Acked {
			sc.AckTime, sc.AckMs = timePtr(s.AckTime), s.AckTime.Sub(cp.Trigger).Milliseconds()
		}
		out.SubtaskStats = append(out.SubtaskStats, sc)
	}
	return out
}

// handleCheckpoint serves GET /api/v1/jobs/{id}/checkpoints/{cid}.
func (c *Coordinator) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cid, err := strconv.ParseInt(r.PathValue("cid"), 10, 64)
	if err != nil || cid <= 0 {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest,
			Message: fmt.Sprintf("checkpoint id %q: want a positive integer", r.PathValue("cid"))})
		return
	}
	c.mu.Lock()
	j := c.jobs[id]
	var out *api.CheckpointDetail
	if j != nil {
		if cp := j.cp.Checkpoint(cid); cp != nil {
			d := renderCheckpointDetail(cp)
			out = &d
		} else if d, ok := c.historyLocked(j).checkpoints[cid]; ok {
			out = &d
		}
	}
	c.mu.Unlock()
	switch {
	case j == nil:
		writeError(w, notFound(id))
	case out == nil:
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound,
			Message: fmt.Sprintf("job %s has no checkpoint %d in its history (the last 100 are kept)", id, cid)})
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// handleRestarts serves GET /api/v1/jobs/{id}/restarts.
func (c *Coordinator) handleRestarts(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	j := c.jobs[id]
	var out api.Restarts
	if j != nil {
		out = renderRestarts(j.m, c.historyLocked(j))
	}
	c.mu.Unlock()
	if j == nil {
		writeError(w, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// renderRestarts lists the restarts earlier coordinators recorded, then
// the job's own, oldest first.
func renderRestarts(m *lifecycle.Job, h *jobHistory) api.Restarts {
	past := pastRestarts(m, h)
	out := api.Restarts{Strategy: "none", Restarts: make([]api.Restart, 0, len(past)+len(m.Restarts))}
	if m.Strategy != nil {
		out.Strategy = m.Strategy.String()
	}
	out.Restarts = append(out.Restarts, past...)
	for _, r := range m.Restarts {
		out.Restarts = append(out.Restarts, renderRestart(r))
	}
	return out
}

func renderRestart(r *lifecycle.Restart) api.Restart {
	return api.Restart{
		Reason:        string(r.Reason),
		FailedAttempt: r.FailedAttempt, Attempt: r.Attempt, Cause: r.Cause, Task: r.Task, Worker: r.Worker,
		DelayMs: r.Delay.Milliseconds(), GaveUp: r.GaveUp, RestoredFrom: r.RestoredFrom, Location: r.RestoredURI, Fallback: r.Fallback,
		DetectedAt: r.DetectedAt, CancelledAt: timePtr(r.CancelledAt), ScheduledAt: timePtr(r.ScheduledAt),
		RestoredAt: timePtr(r.RestoredAt), RunningAt: timePtr(r.RunningAt),
	}
}

// maxSavepointBody bounds the JSON body of a savepoint request.
const maxSavepointBody = 4096

// handleTriggerSavepoint serves POST /api/v1/jobs/{id}/savepoints.
func (c *Coordinator) handleTriggerSavepoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var opts api.SavepointOptions
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSavepointBody))
	if err != nil {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "reading the request body: " + err.Error()})
		return
	}
	if len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&opts); err != nil {
			writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest,
				Message: `invalid body: want {"stop": true|false}: ` + err.Error()})
			return
		}
	}
	rid, err := c.triggerSavepoint(id, opts.Stop)
	switch {
	case errors.Is(err, errUnknownJob):
		writeError(w, notFound(id))
		return
	case errors.Is(err, errSavepointConflict):
		writeError(w, &api.Error{Status: http.StatusConflict, Code: api.CodeConflict, Message: err.Error()})
		return
	case err != nil:
		c.log.Error("savepoint", "job", id, "err", err)
		writeError(w, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()})
		return
	}
	sp, _ := c.savepoint(id, rid)
	w.Header().Set("Location", "/api/v1/jobs/"+id+"/savepoints/"+rid)
	writeJSON(w, http.StatusAccepted, sp)
}

// handleSavepoints serves GET /api/v1/jobs/{id}/savepoints.
func (c *Coordinator) handleSavepoints(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	j := c.jobs[id]
	out := api.SavepointList{Savepoints: []api.Savepoint{}}
	if j != nil {
		for _, sp := range j.cp.Savepoints() {
			out.Savepoints = append(out.Savepoints, renderSavepoint(sp))
		}
	}
	c.mu.Unlock()
	if j == nil {
		writeError(w, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleSavepoint serves GET /api/v1/jobs/{id}/savepoints/{sid}.
func (c *Coordinator) handleSavepoint(w http.ResponseWriter, r *http.Request) {
	id, sid := r.PathValue("id"), r.PathValue("sid")
	sp, err := c.savepoint(id, sid)
	switch {
	case errors.Is(err, errUnknownJob):
		writeError(w, notFound(id))
	case err != nil:
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: err.Error()})
	default:
		writeJSON(w, http.StatusOK, sp)
	}
}

func (c *Coordinator) savepoint(jobID, rid string) (api.Savepoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.jobs[jobID]
	if j == nil {
		return api.Savepoint{}, errUnknownJob
	}
	sp := j.cp.Savepoint(rid)
	if sp == nil {
		return api.Savepoint{}, fmt.Errorf("job %s has no savepoint request %q", jobID, rid)
	}
	return renderSavepoint(sp), nil
}

func renderSavepoint(sp *checkpointing.SavepointRequest) api.Savepoint {
	return api.Savepoint{RequestID: sp.ID, Status: string(sp.Status), Stop: sp.Stop, CheckpointID: sp.CheckpointID,
		Location: sp.URI, Failure: sp.Failure, RequestedAt: sp.RequestedAt, EndedAt: timePtr(sp.EndedAt)}
}
