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
// Reads and writes run on the job's I/O queue (jobio.go), off the
// coordinator's lock, bounded by StorageTimeout. A failed write is logged
// and retried at the next event; it never fails the job. Nothing is
// written before the history of earlier coordinators is loaded, so the
// counts a file carries include theirs.

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

func newJobHistory() *jobHistory {
	return &jobHistory{checkpoints: map[int64]api.CheckpointDetail{}, restarts: map[int64]historyRestartEntry{}}
}

// historyLocked returns what the coordinator knows of the job's history:
// empty until loadHistoryLocked's read has come back.
func (c *Coordinator) historyLocked(j *jobEntry) *jobHistory {
	if j.history == nil {
		j.history = newJobHistory()
	}
	return j.history
}

// loadHistoryLocked reads what storage holds of a job taken over from an
// earlier coordinator, off the lock, then writes what ended since.
func (c *Coordinator) loadHistoryLocked(j *jobEntry) {
	c.historyLocked(j)
	id, st := j.m.ID, j.st
	c.goIO(j, func() {
		h := newJobHistory()
		c.loadHistory(id, st, h)
		c.locked(j, func() {
			cur := j.history
			for k, v := range h.checkpoints {
				if _, ok := cur.checkpoints[k]; !ok {
					cur.checkpoints[k] = v
				}
			}
			for k, v := range h.restarts {
				if old, ok := cur.restarts[k]; !ok || old.steps < v.steps {
					cur.restarts[k] = v
				}
			}
			cur.base = h.base
			j.historyLoaded = true
			c.recordHistoryLocked(j)
		})
	})
}

func (c *Coordinator) loadHistory(id string, st checkpoint.Storage, h *jobHistory) {
	ctx, cancel := c.storageCtx()
	defer cancel()
	dir := path.Join(id, historyDir)
	es, err := st.List(ctx, dir)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return
	}
	if err != nil {
		c.log.Warn("history: listing", "job", id, "err", err)
		return
	}
	var newest int64
	best := map[int64]int{} // detected -> steps of the newest version
	for _, e := range es {
		name := e.Name
		if cid, ok := parseCheckpointFile(name); ok {
			var f historyCheckpoint
			if err := readHistoryFile(ctx, st, path.Join(dir, name), &f); err != nil {
				c.log.Warn("history: skipping a file", "job", id, "file", name, "err", err)
				continue
			}
			h.checkpoints[cid] = f.Checkpoint
			if cid > newest {
				newest, h.base = cid, f.Counts
			}
		} else if det, steps, ok := parseRestartFile(name); ok && steps > best[det] {
			best[det] = steps
		}
	}
	for det, steps := range best {
		var f historyRestart
		if err := readHistoryFile(ctx, st, path.Join(dir, restartFile(det, steps)), &f); err != nil {
			c.log.Warn("history: skipping a restart", "job", id, "detected", det, "err", err)
			continue
		}
		h.restarts[det] = historyRestartEntry{steps, f.Restart}
	}
	if len(h.checkpoints) > 0 || len(h.restarts) > 0 {
		c.log.Info("history: loaded", "job", id, "checkpoints", len(h.checkpoints), "restarts", len(h.restarts))
	}
}

// historyWrite is one history file to write (or, with del, to delete).
type historyWrite struct {
	name string
	v    any
	del  bool
	// undo forgets, under the lock, that the write happened, so the next
	// event retries it.
	undo func()
}

// recordHistoryLocked queues the writes of what ended since the last call:
// checkpoints that are no longer in progress and restart steps not yet
// written. They are marked written at once, and unmarked if the write
// fails.
func (c *Coordinator) recordHistoryLocked(j *jobEntry) {
	if j == nil || j.cp == nil || j.st == nil || !j.historyLoaded {
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
	dir := path.Join(j.m.ID, historyDir)
	var ws []historyWrite
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
		h.checkpoints[cp.ID] = d
		id := cp.ID
		ws = append(ws, historyWrite{name: path.Join(dir, checkpointFile(id)), v: f, undo: func() { delete(h.checkpoints, id) }})
		wrote = true
	}
	for _, r := range j.m.Restarts {
		det, steps := r.DetectedAt.UnixNano(), restartSteps(r)
		old, seen := h.restarts[det]
		if seen && old.steps >= steps {
			continue
		}
		ar := renderRestart(r)
		h.restarts[det] = historyRestartEntry{steps, ar}
		ws = append(ws, historyWrite{name: path.Join(dir, restartFile(det, steps)), v: historyRestart{Format: historyFormat, Restart: ar},
			undo: func() {
				if seen {
					h.restarts[det] = old
				} else {
					delete(h.restarts, det)
				}
			}})
		if seen {
			ws = append(ws, historyWrite{name: path.Join(dir, restartFile(det, old.steps)), del: true})
		}
	}
	if wrote && len(h.checkpoints) > checkpointing.DefaultHistory {
		ids := make([]int64, 0, len(h.checkpoints))
		for id := range h.checkpoints {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids[:len(ids)-checkpointing.DefaultHistory] {
			ws = append(ws, historyWrite{name: path.Join(dir, checkpointFile(id)), del: true})
			delete(h.checkpoints, id)
		}
	}
	if len(ws) == 0 {
		return
	}
	id, st := j.m.ID, j.st
	c.goIO(j, func() {
		ctx, cancel := c.storageCtx()
		defer cancel()
		for i, w := range ws {
			var err error
			if w.del {
				err = st.DeleteAll(ctx, w.name)
			} else {
				err = writeHistoryFile(ctx, st, w.name, w.v)
			}
			if err == nil {
				continue
			}
			c.log.Warn("history: writing", "job", id, "file", w.name, "err", err)
			c.locked(j, func() {
				for _, u := range ws[i:] {
					if u.undo != nil {
						u.undo()
					}
				}
			})
			return
		}
	})
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
