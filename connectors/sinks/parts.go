package sinks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/weir-stream/weir/dataflow"
)

// partSink is the file sink of a job that takes checkpoints: exactly-once
// part files in a directory, committed with the checkpoints, in the manner
// of Flink's FileSink. The package doc gives the protocol and why a zombie
// of an older attempt cannot spoil the output.
type partSink struct {
	enc     *lineSink // encoding and error policy; enc.w writes the current part
	dir     string
	job     string
	subtask int
	par     int
	attempt int64

	next    int64         // number of the next part this subtask opens in this attempt
	cur     *os.File      // the part being written; nil until a record needs one
	curName string        // its committed name
	curSize *countingFile // bytes handed to cur
	created bool          // a part file was created since the directory was last synced

	pending  []pendingPart // pre-committed, waiting for their checkpoint to complete
	restored []pendingPart // from Restore, committed in Open

	opened     bool
	endOfInput bool
	closed     bool
	// failed is a pre-commit that could not write its part. A declined
	// checkpoint does not stop the task, so the error sticks: the records
	// of that part are in no pending list, and only a restore (which
	// replays them) may go on.
	failed error
}

// pendingPart is a part file pre-committed at a checkpoint's barrier: it
// holds exactly Size bytes, is hidden as "."+Part+".inprogress", and
// becomes Part when Checkpoint completes.
type pendingPart struct {
	Checkpoint int64  `json:"checkpoint"`
	Part       string `json:"part"`
	Size       int64  `json:"size"`
}

// partState is the sink's snapshot (version 1).
type partState struct {
	Version int           `json:"version"`
	Pending []pendingPart `json:"pending"`
}

const (
	partStateVersion = 1
	partPrefix       = "part-"
	inProgressSuffix = ".inprogress"
	// endOfInputCheckpoint marks the part a Close after the end of input
	// commits itself (no checkpoint covers it).
	endOfInputCheckpoint = math.MaxInt64
)

// inProgressName is the hidden name a part has until it is committed.
func inProgressName(part string) string { return "." + part + inProgressSuffix }

// partName is the committed name of part n of a subtask in an attempt:
// part-<job>-<subtask>-<attempt>-<n>. Each attempt starts at n = 0; the job
// id keeps jobs that share a directory apart.
func partName(job string, subtask int, attempt, n int64) string {
	return fmt.Sprintf("%s%s-%d-%d-%d", partPrefix, job, subtask, attempt, n)
}

// parsePart splits a committed part name into its job, subtask, attempt
// and number.
func parsePart(name string) (job string, subtask int, attempt, n int64, ok bool) {
	rest, found := strings.CutPrefix(name, partPrefix)
	if !found {
		return "", 0, 0, 0, false
	}
	fields := strings.Split(rest, "-")
	if len(fields) < 4 {
		return "", 0, 0, 0, false
	}
	k := len(fields)
	var nums [3]int64
	for i, f := range fields[k-3:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil || v < 0 || strconv.FormatInt(v, 10) != f {
			return "", 0, 0, 0, false
		}
		nums[i] = v
	}
	job = strings.Join(fields[:k-3], "-")
	if job == "" || nums[0] > math.MaxInt32 || strings.ContainsAny(job, `/\`) || strings.ContainsRune(job, 0) {
		return "", 0, 0, 0, false
	}
	return job, int(nums[0]), nums[1], nums[2], true
}

// jobName makes a job id usable in a file name.
func jobName(id string) string {
	if id == "" {
		return "job"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, id)
}

func newPartSink(enc *lineSink, dir string, ctx *dataflow.Context) *partSink {
	return &partSink{
		enc: enc, dir: dir, job: jobName(ctx.JobID),
		subtask: ctx.Subtask, par: max(ctx.Parallelism, 1), attempt: ctx.Attempt,
	}
}

func (s *partSink) errorf(format string, args ...any) error {
	return fmt.Errorf("sink %s: directory %s: %s", s.enc.node, s.dir, fmt.Sprintf(format, args...))
}

// Open creates the directory, commits the parts pending in the restored
// checkpoint and discards what earlier attempts of this job left in
// progress for the subtasks this one owns.
func (s *partSink) Open(*dataflow.Context) error {
	if s.opened {
		return nil
	}
	s.opened = true
	if fi, err := os.Stat(s.dir); err == nil && !fi.IsDir() {
		return s.errorf("is a file; in a job with checkpoints, file.path names the directory that holds the committed part files (docs/spec.md)")
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("sink %s: %w", s.enc.node, err)
	}
	for _, p := range s.restored {
		if _, sub, _, _, _ := parsePart(p.Part); sub%s.par != s.subtask {
			continue // another subtask commits it (restored at a new parallelism)
		}
		if err := s.commit(p); err != nil {
			return err
		}
	}
	s.restored = nil
	if err := s.discardStale(); err != nil {
		return err
	}
	return s.syncDir()
}

// discardStale removes the in-progress parts of earlier attempts of this
// job for the subtasks this one owns: they were not pre-committed in the
// restored checkpoint (those are committed now), so their records are
// replayed. A zombie of an older attempt may still write to one it has
// open, which only changes an unlinked file.
func (s *partSink) discardStale() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("sink %s: %w", s.enc.node, err)
	}
	for _, e := range entries {
		name := e.Name()
		part, ok := strings.CutPrefix(name, ".")
		if !ok {
			continue
		}
		part, ok = strings.CutSuffix(part, inProgressSuffix)
		if !ok {
			continue
		}
		job, sub, attempt, _, ok := parsePart(part)
		if !ok || job != s.job || sub%s.par != s.subtask || attempt >= s.attempt {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sink %s: discard stale part: %w", s.enc.node, err)
		}
	}
	return nil
}

// commit makes a pre-committed part visible. It is idempotent: a part that
// is committed already (by an earlier notification, a restore, or a zombie
// of an older attempt racing this one) is checked and left alone. Bytes
// beyond the pre-committed size are cut off, as Flink's recoverable writers
// do; fewer bytes than pre-committed, or neither file, means the output of a
// completed checkpoint is lost, which is a hard error.
func (s *partSink) commit(p pendingPart) error {
	src := filepath.Join(s.dir, inProgressName(p.Part))
	dst := filepath.Join(s.dir, p.Part)
	err := s.renameExact(src, dst, p)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fi, err := os.Stat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s.errorf("part %s of checkpoint %d is gone: neither %s nor %s exists, so output of a completed checkpoint is lost",
			p.Part, p.Checkpoint, inProgressName(p.Part), p.Part)
	case err != nil:
		return fmt.Errorf("sink %s: %w", s.enc.node, err)
	case fi.Size() != p.Size:
		return s.errorf("committed part %s of checkpoint %d has %d bytes, %d were pre-committed", p.Part, p.Checkpoint, fi.Size(), p.Size)
	}
	return nil
}

// renameExact cuts src to the pre-committed size and renames it to dst; an
// error wrapping fs.ErrNotExist means src is gone (renamed by someone
// else).
func (s *partSink) renameExact(src, dst string, p pendingPart) error {
	fi, err := os.Stat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fmt.Errorf("sink %s: %w", s.enc.node, err)
	}
	if fi.Size() < p.Size {
		return s.errorf("in-progress part %s of checkpoint %d has %d bytes, %d were pre-committed", p.Part, p.Checkpoint, fi.Size(), p.Size)
	}
	if fi.Size() > p.Size {
		if err := os.Truncate(src, p.Size); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return fmt.Errorf("sink %s: %w", s.enc.node, err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fmt.Errorf("sink %s: commit part: %w", s.enc.node, err)
	}
	return nil
}

func (s *partSink) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("sink %s: %w", s.enc.node, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sink %s: sync directory %s: %w", s.enc.node, s.dir, err)
	}
	s.created = false
	return nil
}

// countingFile counts the bytes written to a part file.
type countingFile struct {
	w io.Writer
	n int64
}

func (c *countingFile) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// roll opens the next in-progress part.
func (s *partSink) roll() error {
	name := partName(s.job, s.subtask, s.attempt, s.next)
	// O_TRUNC: a file by this name can only be a leftover of a run that
	// never got past it; this attempt owns the name.
	f, err := os.OpenFile(filepath.Join(s.dir, inProgressName(name)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("sink %s: open part: %w", s.enc.node, err)
	}
	s.next++
	s.cur, s.curName, s.created = f, name, true
	s.curSize = &countingFile{w: f}
	if s.enc.w == nil {
		s.enc.w = bufio.NewWriterSize(s.curSize, 64<<10)
	} else {
		s.enc.w.Reset(s.curSize)
	}
	s.enc.what = filepath.Join(s.dir, inProgressName(name))
	return nil
}

func (s *partSink) Process(r *dataflow.Record, _ dataflow.Output) error {
	if !s.opened || s.closed {
		return fmt.Errorf("sink %s: record after close or before open", s.enc.node)
	}
	if s.failed != nil {
		return s.failed
	}
	if s.cur == nil {
		if err := s.roll(); err != nil {
			return err
		}
	}
	return s.enc.write(r)
}

// ProcessWatermark notes the end of input and forwards the watermark. It
// does not flush: nothing in an in-progress part is visible anyway.
func (s *partSink) ProcessWatermark(wm int64, out dataflow.Output) error {
	if wm == dataflow.MaxWatermark {
		s.endOfInput = true
	}
	return out.EmitWatermark(wm)
}

// finishPart flushes, syncs and closes the current part and makes it
// pending for checkpoint.
func (s *partSink) finishPart(checkpoint int64) error {
	if s.cur == nil {
		return nil
	}
	f := s.cur
	s.cur = nil
	err := s.enc.w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.failed = fmt.Errorf("sink %s: write %s: %w", s.enc.node, s.enc.what, err)
		return s.failed
	}
	s.pending = append(s.pending, pendingPart{Checkpoint: checkpoint, Part: s.curName, Size: s.curSize.n})
	return nil
}

// Snapshot implements dataflow.Snapshotter; it is the pre-commit: the
// current part is flushed, synced to disk and closed, and the state lists
// every part still waiting for its checkpoint to complete. The next record
// opens a new part.
func (s *partSink) Snapshot(checkpointID int64) ([]byte, error) {
	if s.failed != nil {
		return nil, s.failed
	}
	if err := s.finishPart(checkpointID); err != nil {
		return nil, err
	}
	if s.created {
		// The parts' names must survive a crash as well as their bytes.
		if err := s.syncDir(); err != nil {
			return nil, err
		}
	}
	pending := s.pending
	if pending == nil {
		pending = []pendingPart{}
	}
	return json.Marshal(partState{Version: partStateVersion, Pending: pending})
}

// Restore implements dataflow.Snapshotter: it keeps the pending parts of
// the restored states for Open to commit (they belong to a completed
// checkpoint).
func (s *partSink) Restore(states [][]byte) error {
	for i, b := range states {
		st, err := decodePartState(b)
		if err != nil {
			return fmt.Errorf("sink %s: restored state %d: %w", s.enc.node, i, err)
		}
		for _, p := range st.Pending {
			if !slices.Contains(s.restored, p) {
				s.restored = append(s.restored, p)
			}
		}
	}
	return nil
}

// decodePartState decodes and checks a snapshot of the file sink. The
// part names come from checkpoint storage and are joined to the sink's
// directory, so anything that is not a part name is refused.
func decodePartState(b []byte) (partState, error) {
	var st partState
	if len(b) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return partState{}, fmt.Errorf("file sink state: %w", err)
	}
	if st.Version != partStateVersion {
		return partState{}, fmt.Errorf("file sink state: version %d, want %d", st.Version, partStateVersion)
	}
	for _, p := range st.Pending {
		if _, _, _, _, ok := parsePart(p.Part); !ok || filepath.Base(p.Part) != p.Part {
			return partState{}, fmt.Errorf("file sink state: %q is not a part file name (part-<job>-<subtask>-<attempt>-<n>)", p.Part)
		}
		if p.Size < 0 || p.Checkpoint <= 0 {
			return partState{}, fmt.Errorf("file sink state: part %s: size %d, checkpoint %d", p.Part, p.Size, p.Checkpoint)
		}
	}
	return st, nil
}

// NotifyCheckpointComplete implements dataflow.CheckpointListener: the
// parts pending for checkpointID and earlier are committed.
func (s *partSink) NotifyCheckpointComplete(_ context.Context, checkpointID int64) error {
	return s.commitUpTo(checkpointID)
}

func (s *partSink) commitUpTo(checkpointID int64) error {
	n := 0
	for _, p := range s.pending {
		if p.Checkpoint > checkpointID {
			break
		}
		if err := s.commit(p); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return nil
	}
	s.pending = slices.Delete(s.pending, 0, n)
	return s.syncDir()
}

// Close at the end of input commits what no checkpoint covers (nothing,
// when the final checkpoint completed: records emitted while operators
// close). Otherwise the current part stays in progress, to be discarded by
// a restore, and pending parts wait for their checkpoint's notification or
// a restore.
func (s *partSink) Close(dataflow.Output) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.opened {
		return nil
	}
	if !s.endOfInput || s.failed != nil {
		s.abandon()
		return s.failed
	}
	if err := s.finishPart(endOfInputCheckpoint); err != nil {
		return err
	}
	return s.commitUpTo(endOfInputCheckpoint)
}

// Abort implements dataflow.Aborter: the current part is closed unflushed
// and stays in progress.
func (s *partSink) Abort() {
	s.closed = true
	s.abandon()
}

func (s *partSink) abandon() {
	if s.cur != nil {
		_ = s.cur.Close()
		s.cur = nil
	}
}

var (
	_ dataflow.Operator           = (*partSink)(nil)
	_ dataflow.Snapshotter        = (*partSink)(nil)
	_ dataflow.CheckpointListener = (*partSink)(nil)
	_ dataflow.WatermarkHandler   = (*partSink)(nil)
	_ dataflow.Aborter            = (*partSink)(nil)
)
