package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/checkpointing"
	"github.com/weir-stream/weir/coordinator/lifecycle"
)

// A job's checkpoint history and restart records outlive the coordinator
// process: every checkpoint that ends and every step of a restart's
// timeline is written to the job's checkpoint storage, next to its
// checkpoints, and a coordinator that takes the job over (jobs_persist.go)
// shows them again (docs/checkpoints.md, "History"):
//
//	<root>/<job-id>/history/chk-<id>.json
//	<root>/<job-id>/history/restart-<detected>-<steps>.json
//
// chk-<id>.json is one ended checkpoint or savepoint as the REST API shows
// it (its row and per-subtask figures) and the job's checkpoint counts
// after it. A restart file is the restart as of its steps-th timeline step
// (detected = 1 … running = 5, +1 when the strategy gave up); detected is
// detected_at in Unix nanoseconds, which names the restart across
// coordinators. A newer step is written before the older file is deleted,
// so a crash leaves two versions and the reader takes the one with more
// steps. Every file is written under "<name>.tmp" and renamed. The newest
// checkpointing.DefaultHistory checkpoint files are kept.
//
// Writes run on the coordinator's event loop like the _metadata commit:
// they are small, and bounded by StorageTimeout. A failed write is logged
// and retried at the next event; it never fails the job.

const (
	historyDir    = "history"
	historyFormat = 1
)

// historyCheckpoint is the content of chk-<id>.json.
type historyCheckpoint struct {
	Format int `json:"format"`
	// Counts are the job's totals after this checkpoint ended, over every
	// coordinator that ran the job.
	Counts     api.CheckpointCounts `json:"counts"`
	Checkpoint api.CheckpointDetail `json:"checkpoint"`
}

// historyRestart is the content of restart-<detected>-<steps>.json.
type historyRestart struct {
	Format  int         `json:"format"`
	Restart api.Restart `json:"restart"`
}

// jobHistory is what a coordinator knows of a job's persisted history.
type jobHistory struct {
	// checkpoints holds every checkpoint file, by id: loaded at take-over
	// and written since.
	checkpoints map[int64]api.CheckpointDetail
	// base are the counts of earlier coordinators (the newest file found
	// at take-over); this coordinator's tracker counts add to them.
	base api.CheckpointCounts
	// restarts holds every restart file by detected (Unix ns): its steps
	// and content.
	restarts map[int64]historyRestartEntry
}

type historyRestartEntry struct {
	steps int
	r     api.Restart
}

// historyLocked returns the job's history, loading what storage holds on
// first use (a job taken over from an earlier coordinator).
func (c *Coordinator) historyLocked(j *jobEntry) *jobHistory {
	if j.history != nil {
		return j.history
	}
	h := &jobHistory{checkpoints: map[int64]api.CheckpointDetail{}, restarts: map[int64]historyRestartEntry{}}
	c.loadHistoryLocked(j, h)
	j.history = h
	return h
}

func (c *Coordinator) loadHistoryLocked(j *jobEntry, h *jobHistory) {
	ctx, cancel := c.storageCtx()
	defer cancel()
	dir := path.Join(j.m.ID, historyDir)
	es, err := j.st.List(ctx, dir)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return
	}
	if err != nil {
		c.log.Warn("history: listing", "job", j.m.ID, "err", err)
		return
	}
	var newest int64
	best := map[int64]int{} // detected -> steps of the newest version
	for _, e := range es {
		name := e.Name
		if id, ok := parseCheckpointFile(name); ok {
			var f historyCheckpoint
			if err := readHistoryFile(ctx, j.st, path.Join(dir, name), &f); err != nil {
				c.log.Warn("history: skipping a file", "job", j.m.ID, "file", name, "err", err)
				continue
			}
			h.checkpoints[id] = f.Checkpoint
			if id > newest {
				newest, h.base = id, f.Counts
			}
		} else if det, steps, ok := parseRestartFile(name); ok && steps > best[det] {
			best[det] = steps
		}
	}
	for det, steps := range best {
		var f historyRestart
		if err := readHistoryFile(ctx, j.st, path.Join(dir, restartFile(det, steps)), &f); err != nil {
			c.log.Warn("history: skipping a restart", "job", j.m.ID, "detected", det, "err", err)
			continue
		}
		h.restarts[det] = historyRestartEntry{steps, f.Restart}
	}
	if len(h.checkpoints) > 0 || len(h.restarts) > 0 {
		c.log.Info("history: loaded", "job", j.m.ID, "checkpoints", len(h.checkpoints), "restarts", len(h.restarts))
	}
}

// recordHistoryLocked writes what ended since the last call: checkpoints
// that are no longer in progress and restart steps not yet written.
func (c *Coordinator) recordHistoryLocked(j *jobEntry) {
	if j == nil || j.cp == nil || j.st == nil {
		return
	}
	select {
	case <-c.stopping:
		// What a stopping coordinator sees (sessions closing, jobs
		// failing) is its own shutdown, not the jobs' history.
		return
	default:
	}
	h := c.historyLocked(j)
	var ctx context.Context
	var cancel context.CancelFunc = func() {}
	defer func() { cancel() }()
	storage := func() context.Context {
		if ctx == nil {
			ctx, cancel = c.storageCtx()
		}
		return ctx
	}
	dir := path.Join(j.m.ID, historyDir)
	wrote := false
	for _, cp := range j.cp.History() {
		if cp.Status == checkpointing.InProgress {
			continue
		}
		if _, done := h.checkpoints[cp.ID]; done {
			continue
		}
		d := renderCheckpointDetail(cp)
		f := historyCheckpoint{Format: historyFormat, Counts: c.countsLocked(j, h), Checkpoint: d}
		if err := writeHistoryFile(storage(), j.st, path.Join(dir, checkpointFile(cp.ID)), f); err != nil {
			c.log.Warn("history: writing a checkpoint", "job", j.m.ID, "checkpoint", cp.ID, "err", err)
			return
		}
		h.checkpoints[cp.ID] = d
		wrote = true
	}
	for _, r := range j.m.Restarts {
		det, steps := r.DetectedAt.UnixNano(), restartSteps(r)
		old, seen := h.restarts[det]
		if seen && old.steps >= steps {
			continue
		}
		ar := renderRestart(r)
		if err := writeHistoryFile(storage(), j.st, path.Join(dir, restartFile(det, steps)), historyRestart{Format: historyFormat, Restart: ar}); err != nil {
			c.log.Warn("history: writing a restart", "job", j.m.ID, "detected", r.DetectedAt, "err", err)
			return
		}
		if seen {
			if err := j.st.DeleteAll(storage(), path.Join(dir, restartFile(det, old.steps))); err != nil {
				c.log.Warn("history: deleting an older restart step", "job", j.m.ID, "err", err)
			}
		}
		h.restarts[det] = historyRestartEntry{steps, ar}
	}
	if wrote && len(h.checkpoints) > checkpointing.DefaultHistory {
		ids := make([]int64, 0, len(h.checkpoints))
		for id := range h.checkpoints {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids[:len(ids)-checkpointing.DefaultHistory] {
			if err := j.st.DeleteAll(storage(), path.Join(dir, checkpointFile(id))); err != nil {
				c.log.Warn("history: deleting an old checkpoint record", "job", j.m.ID, "checkpoint", id, "err", err)
				break
			}
			delete(h.checkpoints, id)
		}
	}
}

// restartSteps counts the timeline steps a restart has reached; giving up
// is one more.
func restartSteps(r *lifecycle.Restart) int {
	n := 0
	for _, t := range []time.Time{r.DetectedAt, r.CancelledAt, r.ScheduledAt, r.RestoredAt, r.RunningAt} {
		if !t.IsZero() {
			n++
		}
	}
	if r.GaveUp {
		n++
	}
	return n
}

// countsLocked are the job's checkpoint counts over every coordinator.
func (c *Coordinator) countsLocked(j *jobEntry, h *jobHistory) api.CheckpointCounts {
	n := j.cp.Counts()
	return api.CheckpointCounts{
		Triggered: h.base.Triggered + n.Triggered, InProgress: n.InProgress,
		Completed: h.base.Completed + n.Completed, Failed: h.base.Failed + n.Failed,
	}
}

// pastCheckpoints are the persisted checkpoints the tracker does not hold
// (earlier coordinators', or older than its history), newest first.
func (c *Coordinator) pastCheckpointsLocked(j *jobEntry, h *jobHistory) []api.CheckpointDetail {
	live := map[int64]bool{}
	for _, cp := range j.cp.History() {
		live[cp.ID] = true
	}
	var out []api.CheckpointDetail
	for id, d := range h.checkpoints {
		if !live[id] {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b api.CheckpointDetail) int { return int(b.ID - a.ID) })
	return out
}

// pastRestarts are the persisted restarts of earlier coordinators (not in
// the job's live records), oldest first.
func pastRestarts(m *lifecycle.Job, h *jobHistory) []api.Restart {
	live := map[int64]bool{}
	for _, r := range m.Restarts {
		live[r.DetectedAt.UnixNano()] = true
	}
	var out []api.Restart
	for det, e := range h.restarts {
		if !live[det] {
			out = append(out, e.r)
		}
	}
	slices.SortFunc(out, func(a, b api.Restart) int { return a.DetectedAt.Compare(b.DetectedAt) })
	return out
}

func checkpointFile(id int64) string { return fmt.Sprintf("chk-%d.json", id) }

func restartFile(detected int64, steps int) string {
	return fmt.Sprintf("restart-%d-%d.json", detected, steps)
}

func parseCheckpointFile(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, "chk-")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".json")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

func parseRestartFile(name string) (detected int64, steps int, ok bool) {
	rest, ok := strings.CutPrefix(name, "restart-")
	if !ok {
		return 0, 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".json")
	if !ok {
		return 0, 0, false
	}
	d, s, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	det, err1 := strconv.ParseInt(d, 10, 64)
	st, err2 := strconv.Atoi(s)
	return det, st, err1 == nil && err2 == nil && st > 0
}

// maxHistoryFile bounds one history file read back.
const maxHistoryFile = 16 << 20

func readHistoryFile(ctx context.Context, st checkpoint.Storage, p string, v any) error {
	r, err := st.Open(ctx, p)
	if err != nil {
		return err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxHistoryFile+1))
	if err != nil {
		return err
	}
	if len(data) > maxHistoryFile {
		return fmt.Errorf("%s: larger than %d bytes", st.URI(p), maxHistoryFile)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", st.URI(p), err)
	}
	return nil
}

// writeHistoryFile writes v to p through p.tmp and a rename; an existing p is
// left as it is (a record, once written, does not change).
func writeHistoryFile(ctx context.Context, st checkpoint.Storage, p string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := st.DeleteAll(ctx, tmp); err != nil {
		return err
	}
	w, err := st.Create(ctx, tmp)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		_ = st.DeleteAll(ctx, tmp)
		return err
	}
	if err := w.Close(); err != nil {
		_ = st.DeleteAll(ctx, tmp)
		return err
	}
	if err := st.Rename(ctx, tmp, p); err != nil {
		_ = st.DeleteAll(ctx, tmp)
		if errors.Is(err, checkpoint.ErrExists) {
			return nil
		}
		return err
	}
	return nil
}
