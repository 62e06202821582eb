// Package checkpointing is the coordinator's checkpoint tracker: a pure
// state machine that takes events (clock ticks, acknowledgements, declines,
// the job starting and stopping, savepoint requests, the outcome of writing
// _metadata) and returns the actions the driver must carry out (trigger,
// abort, commit, notify, retain, fail the job). It starts no goroutines and
// does no I/O. checkpoint/doc.go ("The coordinator's duties") is the
// protocol it implements.
//
// The caller's duties:
//
//  1. Create one Tracker per job with New, seeding the id counter with the
//     highest checkpoint id found in storage for the job.
//  2. Feed Running when an attempt of the job is RUNNING (every subtask
//     runs) and Stopped when it leaves RUNNING (failing, cancelling,
//     finished); Tick periodically; every CheckpointAck and
//     CheckpointDecline as Ack and Decline; TaskFinished for a subtask that
//     ended normally; TriggerSavepoint for a user's request.
//  3. Carry out the actions in order. Trigger: send TriggerCheckpoint to
//     every source subtask. Abort: delete the checkpoint's directory and send
//     AbortCheckpoint to every subtask. Commit: write the metadata to
//     _metadata (tmp + rename) and feed Committed with the outcome. Notify:
//     send NotifyCheckpointComplete to every subtask. Retain: keep the last
//     Keep completed checkpoints. FailJob: fail the job with the cause.
package checkpointing

import (
	"errors"
	"fmt"
	"time"

	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// Config is a job's checkpoint settings.
type Config struct {
	JobID, JobName string
	// JobSpec and MaxParallelism go into every _metadata.
	JobSpec        []byte
	MaxParallelism int
	// Interval between triggers, measured from the previous trigger; 0
	// disables periodic checkpoints (savepoints still work).
	Interval time.Duration
	// Timeout aborts a checkpoint that is not complete after this long
	// (default 10m).
	Timeout time.Duration
	// MinPause is the least time from one checkpoint's end to the next
	// periodic trigger.
	MinPause time.Duration
	// TolerableFailures consecutive failures are survived; one more emits
	// FailJob.
	TolerableFailures int
	// Retained completed checkpoints are kept (default 3).
	Retained int
	// History bounds the checkpoints kept for inspection (default 100).
	History int
}

// Defaults.
const (
	DefaultTimeout  = 10 * time.Minute
	DefaultRetained = 3
	DefaultHistory  = 100
)

// TaskKey names a subtask.
type TaskKey struct {
	Vertex  string
	Subtask int
}

func (k TaskKey) String() string { return fmt.Sprintf("%s[%d]", k.Vertex, k.Subtask) }

// Task is one subtask of the running attempt.
type Task struct {
	Key         TaskKey
	Parallelism int
	// Source: the subtask's vertex starts with a source (it is triggered).
	Source bool
}

// Status of a checkpoint or savepoint request.
type Status string

// Statuses.
const (
	InProgress Status = "IN_PROGRESS"
	Completed  Status = "COMPLETED"
	Failed     Status = "FAILED"
)

// Reason classifies why a checkpoint failed (Flink's
// CheckpointFailureReason, much shortened).
type Reason string

// Failure reasons.
const (
	ReasonDeclined     Reason = "DECLINED"
	ReasonTimeout      Reason = "TIMEOUT"
	ReasonJobStopped   Reason = "JOB_STOPPED"
	ReasonCommitFailed Reason = "COMMIT_FAILED"
)

// SubtaskStats is what one subtask reported for one checkpoint.
type SubtaskStats struct {
	Task        TaskKey
	Acked       bool
	AckTime     time.Time
	SyncMs      int64
	AsyncMs     int64
	AlignmentMs int64
	Bytes       int64
}

// Checkpoint is one triggered checkpoint or savepoint and its figures.
type Checkpoint struct {
	ID        int64
	Attempt   int64
	Savepoint bool
	Stop      bool
	// Final: every subtask took it after the end of its input (set when it
	// completes; Notify.Final).
	Final bool
	// RequestID is the savepoint request that triggered it.
	RequestID string
	Status    Status
	Trigger   time.Time
	End       time.Time // zero while in progress
	Size      int64     // bytes over all subtasks
	Subtasks  []SubtaskStats
	Reason    Reason // FAILED only
	Failure   string // FAILED only: what went wrong
	// URI is the _metadata URI once COMPLETED.
	URI string

	ops   map[TaskKey][]*checkpointpb.OperatorState
	stats map[TaskKey]*checkpointpb.SubtaskStats
	// pos finds a subtask in Subtasks (the tracker's tasks when
	// triggered, in order): a scan per acknowledgement made a checkpoint
	// cost O(subtasks²).
	pos        map[TaskKey]int
	scanned    *int
	acked      int
	endOfInput int // acks taken at the end of the subtask's input
	committing bool
}

// Duration is from trigger to end (or to now while in progress: zero).
func (c *Checkpoint) Duration() time.Duration {
	if c.End.IsZero() {
		return 0
	}
	return c.End.Sub(c.Trigger)
}

// Slowest is the subtask whose acknowledgement came last, and how long
// after the trigger it came; ok is false before any ack.
func (c *Checkpoint) Slowest() (k TaskKey, d time.Duration, ok bool) {
	for _, s := range c.Subtasks {
		if s.Acked && (!ok || s.AckTime.Sub(c.Trigger) > d) {
			k, d, ok = s.Task, s.AckTime.Sub(c.Trigger), true
		}
	}
	return k, d, ok
}

// MaxAlignmentMs is the longest alignment over the subtasks.
func (c *Checkpoint) MaxAlignmentMs() int64 {
	var m int64
	for _, s := range c.Subtasks {
		m = max(m, s.AlignmentMs)
	}
	return m
}

// SavepointRequest is a user's savepoint request.
type SavepointRequest struct {
	ID           string
	Stop         bool
	RequestedAt  time.Time
	CheckpointID int64 // taken when requested; ID is sp-<CheckpointID> for the coordinator's requests
	Status       Status
	Failure      string
	URI          string
	EndedAt      time.Time
}

// Counts are the totals since the job was submitted.
type Counts struct {
	Triggered, InProgress, Completed, Failed int
}

// Errors from Handle for requests that cannot be served now.
var (
	ErrNotRunning  = errors.New("checkpointing: the job is not running")
	ErrStopping    = errors.New("checkpointing: the job is stopping with a savepoint")
	ErrTaskEnded   = errors.New("checkpointing: some subtasks have finished; a savepoint needs every subtask running")
	ErrInputEnded  = errors.New("checkpointing: the job's input has ended and its final checkpoint is complete; the job is finishing")
	ErrDuplicateID = errors.New("checkpointing: savepoint request id already used")
)

// Tracker is one job's checkpoint coordinator state. Use New.
type Tracker struct {
	cfg    Config
	nextID int64

	running bool
	attempt int64
	tasks   []Task
	// pos is each task's index in tasks; sources counts the source
	// subtasks and endedSources those in inputEnded.
	pos                   map[TaskKey]int
	sources, endedSources int
	// scanned counts the subtasks examined to find one: the tests hold it
	// linear in the acknowledgements.
	scanned  int
	finished map[TaskKey]bool
	// final is the attempt's final checkpoint (Notify.Final), 0 until one
	// completed; after it no more are triggered, the subtasks are ending.
	final int64
	// inputEnded holds the source subtasks at the end of their input;
	// endTriggered is the checkpoint triggered when the last one got
	// there (0: none yet).
	inputEnded   map[TaskKey]bool
	endTriggered int64
	stopped      bool // a stop-with-savepoint was triggered
	// stopNext: a stop checkpoint was asked for (TriggerStop) and is
	// triggered once nothing else is in flight.
	stopNext    bool
	lastTrigger time.Time
	lastEnd     time.Time

	pending     *Checkpoint
	queued      []*SavepointRequest
	consecutive int

	history    []*Checkpoint
	counts     Counts
	latest     *Checkpoint
	savepoints map[string]*SavepointRequest
	spOrder    []string
}

// New returns a tracker whose first checkpoint id is lastID+1.
func New(cfg Config, lastID int64) *Tracker {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retained <= 0 {
		cfg.Retained = DefaultRetained
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	return &Tracker{cfg: cfg, nextID: lastID + 1, savepoints: map[string]*SavepointRequest{}}
}

// Config returns the tracker's settings.
func (t *Tracker) Config() Config { return t.cfg }

// NextID is the id the next checkpoint will get.
func (t *Tracker) NextID() int64 { return t.nextID }

// Final is the attempt's final checkpoint, once one completed (0 before):
// a source still waiting at the end of its input missed its notification,
// which the driver sends it again.
func (t *Tracker) Final() int64 { return t.final }

// Pending is the checkpoint in flight, or nil.
func (t *Tracker) Pending() *Checkpoint { return t.pending }

// History returns the checkpoints kept, oldest first.
func (t *Tracker) History() []*Checkpoint { return t.history }

// Counts returns the totals.
func (t *Tracker) Counts() Counts { return t.counts }

// Latest is the latest completed checkpoint or savepoint, or nil.
func (t *Tracker) Latest() *Checkpoint { return t.latest }

// Checkpoint returns the kept checkpoint with id, or nil.
func (t *Tracker) Checkpoint(id int64) *Checkpoint {
	for _, c := range t.history {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Savepoint returns a savepoint request by id, or nil.
func (t *Tracker) Savepoint(id string) *SavepointRequest { return t.savepoints[id] }

// Savepoints returns every savepoint request, oldest first.
func (t *Tracker) Savepoints() []*SavepointRequest {
	out := make([]*SavepointRequest, 0, len(t.spOrder))
	for _, id := range t.spOrder {
		out = append(out, t.savepoints[id])
	}
	return out
}

// Event is something that happened.
type Event interface{ isEvent() }

// Running: the attempt's every subtask runs; periodic triggering starts
// (the first one Interval from now).
type Running struct {
	Now     time.Time
	Attempt int64
	Tasks   []Task
}

// Stopped: the job left RUNNING (failure, cancel, finish); the checkpoint
// in flight is aborted without counting as a failure.
type Stopped struct {
	Now    time.Time
	Reason string
}

// Tick is the passing of time: triggers and timeouts.
type Tick struct{ Now time.Time }

// Ack is a subtask's CheckpointAck.
type Ack struct {
	Now       time.Time
	Attempt   int64
	ID        int64
	Task      TaskKey
	Operators []*checkpointpb.OperatorState
	Stats     *checkpointpb.SubtaskStats
	// EndOfInput: the subtask took the checkpoint after the end of its
	// input (CheckpointAck.end_of_input).
	EndOfInput bool
}

// Decline is a subtask's CheckpointDecline.
type Decline struct {
	Now     time.Time
	Attempt int64
	ID      int64
	Task    TaskKey
	Reason  string
}

// TaskFinished: a subtask ended normally; no periodic checkpoint is
// triggered for the rest of the attempt (it could never complete).
type TaskFinished struct {
	Now     time.Time
	Attempt int64
	Task    TaskKey
}

// InputEnded: a source subtask reached the end of its input and waits for
// the final checkpoint (TaskStatus.end_of_input). Once every source has,
// a checkpoint is triggered at once rather than after the interval: it is
// the final one, and the job finishes when it completes.
type InputEnded struct {
	Now     time.Time
	Attempt int64
	Task    TaskKey
}

// TriggerSavepoint is a user's request. It is triggered at once when
// nothing is in flight, else right after the checkpoint in flight ends.
type TriggerSavepoint struct {
	Now       time.Time
	RequestID string
	Stop      bool
}

// Committed is the outcome of carrying out Commit: URI is the written
// _metadata, Err the failure.
type Committed struct {
	Now time.Time
	ID  int64
	URI string
	Err error
}

func (Running) isEvent()          {}
func (Stopped) isEvent()          {}
func (Tick) isEvent()             {}
func (Ack) isEvent()              {}
func (Decline) isEvent()          {}
func (TaskFinished) isEvent()     {}
func (InputEnded) isEvent()       {}
func (TriggerSavepoint) isEvent() {}
func (Committed) isEvent()        {}
func (TriggerStop) isEvent()      {}

// TriggerStop asks for a stop checkpoint: a checkpoint like the periodic
// ones (chk-<n>, retained, restored by the next attempt) whose barrier
// stops the sources, so the subtasks finish once it completes. The
// coordinator takes one to move a job off a draining worker. It triggers
// at once when nothing is in flight, else right after.
type TriggerStop struct{ Now time.Time }

// Action is something the driver must do.
type Action interface{ isAction() }

// Trigger: send TriggerCheckpoint(ID) to every source subtask of Attempt.
type Trigger struct {
	ID        int64
	Attempt   int64
	Savepoint bool
	Stop      bool
	Timestamp time.Time
}

// Abort: delete the checkpoint's files and send AbortCheckpoint(ID) to
// every subtask of Attempt.
type Abort struct {
	ID        int64
	Attempt   int64
	Savepoint bool
	Reason    string
}

// Commit: write Metadata as the checkpoint's (or savepoint's) _metadata,
// then feed Committed.
type Commit struct {
	ID        int64
	Savepoint bool
	Metadata  *checkpointpb.Metadata
}

// Notify: send NotifyCheckpointComplete(ID) to every subtask of Attempt.
type Notify struct {
	ID      int64
	Attempt int64
	// Final: every subtask took the checkpoint at the end of its input,
	// so it covers the job's whole input; sources waiting there end.
	Final bool
	// Stop: its barrier stopped the sources (a stop checkpoint or a
	// stop-with-savepoint); the subtasks finish now.
	Stop bool
}

// Retain: keep the last Keep completed checkpoints, delete older ones.
type Retain struct{ Keep int }

// FailJob: too many consecutive checkpoint failures.
type FailJob struct{ Cause string }

func (Trigger) isAction() {}
func (Abort) isAction()   {}
func (Commit) isAction()  {}
func (Notify) isAction()  {}
func (Retain) isAction()  {}
func (FailJob) isAction() {}

// Handle applies one event and returns the actions to carry out. An error
// refuses a savepoint request; other events never fail.
func (t *Tracker) Handle(ev Event) ([]Action, error) {
	var acts []Action
	var now time.Time
	switch e := ev.(type) {
	case Running:
		now = e.Now
		t.running, t.attempt, t.stopped, t.stopNext = true, e.Attempt, false, false
		t.tasks = append([]Task(nil), e.Tasks...)
		t.pos, t.sources, t.endedSources = make(map[TaskKey]int, len(t.tasks)), 0, 0
		for i, tk := range t.tasks {
			t.pos[tk.Key] = i
			if tk.Source {
				t.sources++
			}
		}
		t.finished = map[TaskKey]bool{}
		t.final = 0
		t.inputEnded, t.endTriggered = map[TaskKey]bool{}, 0
		t.lastTrigger = e.Now
	case Stopped:
		now = e.Now
		if t.pending != nil && !t.pending.committing {
			acts = t.fail(acts, e.Now, ReasonJobStopped, "the job stopped: "+e.Reason, false)
		}
		for _, r := range t.queued {
			t.endRequest(r, e.Now, "the job stopped before the savepoint was triggered: "+e.Reason)
		}
		t.queued = nil
		t.stopNext = false
		t.running = false
	case Tick:
		now = e.Now
		if p := t.pending; p != nil && !p.committing && !e.Now.Before(p.Trigger.Add(t.cfg.Timeout)) {
			acts = t.fail(acts, e.Now, ReasonTimeout, fmt.Sprintf("not complete within the timeout of %s (%d of %d subtasks acknowledged)", t.cfg.Timeout, p.acked, len(p.Subtasks)), p.counts())
		}
	case Ack:
		now = e.Now
		acts = t.ack(acts, e)
	case Decline:
		now = e.Now
		if p := t.pending; p != nil && e.Attempt == t.attempt && e.ID == p.ID && !p.committing && p.index(e.Task) >= 0 {
			acts = t.fail(acts, e.Now, ReasonDeclined, fmt.Sprintf("subtask %s declined: %s", e.Task, e.Reason), p.counts())
		}
	case TaskFinished:
		now = e.Now
		if e.Attempt == t.attempt && t.finished != nil {
			t.finished[e.Task] = true
		}
	case InputEnded:
		now = e.Now
		if e.Attempt == t.attempt && t.inputEnded != nil && !t.inputEnded[e.Task] {
			t.inputEnded[e.Task] = true
			if i, ok := t.pos[e.Task]; ok && t.tasks[i].Source {
				t.endedSources++
			}
		}
	case TriggerSavepoint:
		now = e.Now
		if err := t.requestSavepoint(e); err != nil {
			return nil, err
		}
	case Committed:
		now = e.Now
		acts = t.committed(acts, e)
	case TriggerStop:
		now = e.Now
		if err := t.requestStop(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("checkpointing: unknown event %T", ev)
	}
	for _, a := range acts {
		if _, ok := a.(FailJob); ok {
			return acts, nil // the job is going down: trigger nothing more
		}
	}
	return t.maybeTrigger(acts, now), nil
}

// allInputEnded reports whether every source subtask is at the end of its
// input.
func (t *Tracker) allInputEnded() bool {
	return t.sources > 0 && t.endedSources == t.sources
}

func (t *Tracker) requestSavepoint(e TriggerSavepoint) error {
	switch {
	case e.RequestID == "":
		return errors.New("checkpointing: savepoint request without an id")
	case t.savepoints[e.RequestID] != nil:
		return ErrDuplicateID
	case !t.running:
		return ErrNotRunning
	case t.stopped || t.stopQueued():
		return ErrStopping
	case len(t.finished) > 0:
		return ErrTaskEnded
	case t.final != 0:
		return ErrInputEnded
	}
	// The savepoint's checkpoint id is taken now, so the request can be
	// named after it (sp-<id>, the name of its directory). Queued requests
	// trigger before any periodic checkpoint, in order, so ids still
	// increase in trigger order; a request that never triggers leaves a
	// gap, as an aborted checkpoint does.
	r := &SavepointRequest{ID: e.RequestID, Stop: e.Stop, RequestedAt: e.Now, Status: InProgress, CheckpointID: t.nextID}
	t.nextID++
	t.savepoints[r.ID] = r
	t.spOrder = append(t.spOrder, r.ID)
	t.queued = append(t.queued, r)
	return nil
}

func (t *Tracker) requestStop() error {
	switch {
	case !t.running:
		return ErrNotRunning
	case t.stopped || t.stopNext || t.stopQueued():
		return ErrStopping
	case len(t.finished) > 0:
		return ErrTaskEnded
	case t.final != 0:
		return ErrInputEnded
	}
	t.stopNext = true
	return nil
}

// Stopping reports whether a stop checkpoint or stop-with-savepoint is
// asked for, in flight, or completed in this attempt; it turns false when
// one fails (the sources resume).
func (t *Tracker) Stopping() bool { return t.stopped || t.stopNext || t.stopQueued() }

func (t *Tracker) stopQueued() bool {
	if t.stopNext {
		return true
	}
	for _, r := range t.queued {
		if r.Stop {
			return true
		}
	}
	return false
}

// maybeTrigger starts the next checkpoint when one is due: a queued
// savepoint at once, a periodic one after Interval and MinPause.
func (t *Tracker) maybeTrigger(acts []Action, now time.Time) []Action {
	if !t.running || t.pending != nil || t.stopped {
		return acts
	}
	if len(t.queued) > 0 {
		r := t.queued[0]
		t.queued = t.queued[1:]
		return t.trigger(acts, now, r)
	}
	if t.stopNext {
		t.stopNext = false
		t.stopped = true
		acts = t.trigger(acts, now, nil)
		t.pending.Stop = true
		last := acts[len(acts)-1].(Trigger)
		last.Stop = true
		acts[len(acts)-1] = last
		return acts
	}
	if t.cfg.Interval <= 0 || len(t.finished) > 0 || t.final != 0 {
		return acts
	}
	if t.endTriggered == 0 && t.allInputEnded() {
		acts = t.trigger(acts, now, nil)
		t.endTriggered = t.pending.ID
		return acts
	}
	due := t.lastTrigger.Add(t.cfg.Interval)
	if !t.lastEnd.IsZero() {
		if p := t.lastEnd.Add(t.cfg.MinPause); p.After(due) {
			due = p
		}
	}
	if now.Before(due) {
		return acts
	}
	return t.trigger(acts, now, nil)
}

func (t *Tracker) trigger(acts []Action, now time.Time, r *SavepointRequest) []Action {
	id := t.nextID
	if r != nil {
		id = r.CheckpointID // taken when it was requested
	} else {
		t.nextID++
	}
	c := &Checkpoint{
		ID: id, Attempt: t.attempt, Status: InProgress, Trigger: now,
		ops: map[TaskKey][]*checkpointpb.OperatorState{}, stats: map[TaskKey]*checkpointpb.SubtaskStats{},
		pos: t.pos, scanned: &t.scanned,
	}
	c.Subtasks = make([]SubtaskStats, 0, len(t.tasks))
	for _, tk := range t.tasks {
		c.Subtasks = append(c.Subtasks, SubtaskStats{Task: tk.Key})
	}
	if r != nil {
		c.Savepoint, c.Stop, c.RequestID = true, r.Stop, r.ID
		if r.Stop {
			t.stopped = true
		}
	}
	t.pending = c
	t.lastTrigger = now
	t.counts.Triggered++
	t.counts.InProgress++
	t.history = append(t.history, c)
	if len(t.history) > t.cfg.History {
		t.history = t.history[len(t.history)-t.cfg.History:]
	}
	return append(acts, Trigger{ID: c.ID, Attempt: t.attempt, Savepoint: c.Savepoint, Stop: c.Stop, Timestamp: now})
}

func (c *Checkpoint) index(k TaskKey) int {
	n := 1
	defer func() {
		if c.scanned != nil {
			*c.scanned += n
		}
	}()
	if i, ok := c.pos[k]; ok && i < len(c.Subtasks) && c.Subtasks[i].Task == k {
		return i
	}
	for i := range c.Subtasks {
		n++
		if c.Subtasks[i].Task == k {
			return i
		}
	}
	return -1
}

func (t *Tracker) ack(acts []Action, e Ack) []Action {
	p := t.pending
	if p == nil || e.Attempt != t.attempt || e.ID != p.ID || p.committing {
		return acts // late, early, or from another attempt
	}
	i := p.index(e.Task)
	if i < 0 || p.Subtasks[i].Acked {
		return acts
	}
	s := &p.Subtasks[i]
	s.Acked, s.AckTime = true, e.Now
	st := &checkpointpb.SubtaskStats{}
	if e.Stats != nil {
		st.SyncMs, st.AsyncMs, st.AlignmentMs, st.Bytes = e.Stats.GetSyncMs(), e.Stats.GetAsyncMs(), e.Stats.GetAlignmentMs(), e.Stats.GetBytes()
	}
	st.AckUnixMs = e.Now.UnixMilli()
	s.SyncMs, s.AsyncMs, s.AlignmentMs, s.Bytes = st.SyncMs, st.AsyncMs, st.AlignmentMs, st.Bytes
	if s.Bytes == 0 {
		for _, op := range e.Operators {
			s.Bytes += op.GetHandle().GetSize()
		}
	}
	p.Size += s.Bytes
	p.ops[e.Task] = e.Operators
	p.stats[e.Task] = st
	p.acked++
	if e.EndOfInput {
		p.endOfInput++
	}
	if p.acked < len(p.Subtasks) {
		return acts
	}
	p.committing = true
	return append(acts, Commit{ID: p.ID, Savepoint: p.Savepoint, Metadata: t.metadata(p, e.Now)})
}

func (t *Tracker) metadata(p *Checkpoint, now time.Time) *checkpointpb.Metadata {
	md := &checkpointpb.Metadata{
		FormatVersion: 1, JobId: t.cfg.JobID, JobName: t.cfg.JobName, CheckpointId: p.ID, Savepoint: p.Savepoint,
		TriggerUnixMs: p.Trigger.UnixMilli(), CompleteUnixMs: now.UnixMilli(),
		JobSpec: t.cfg.JobSpec, MaxParallelism: int32(t.cfg.MaxParallelism),
	}
	for _, tk := range t.tasks {
		md.Subtasks = append(md.Subtasks, &checkpointpb.SubtaskState{
			VertexId: tk.Key.Vertex, Subtask: int32(tk.Key.Subtask), Parallelism: int32(tk.Parallelism),
			Operators: p.ops[tk.Key], Stats: p.stats[tk.Key],
		})
	}
	return md
}

func (t *Tracker) committed(acts []Action, e Committed) []Action {
	p := t.pending
	if p == nil || e.ID != p.ID || !p.committing {
		return acts
	}
	if e.Err != nil {
		p.committing = false
		return t.fail(acts, e.Now, ReasonCommitFailed, "writing _metadata: "+e.Err.Error(), p.counts())
	}
	p.Status, p.End, p.URI = Completed, e.Now, e.URI
	t.pending = nil
	t.lastEnd = e.Now
	t.counts.InProgress--
	t.counts.Completed++
	t.latest = p
	// A savepoint is never the final checkpoint: a restart restores the
	// latest checkpoint, which must cover what the final one committed.
	final := !p.Savepoint && p.endOfInput == len(p.Subtasks)
	p.Final = final
	if final && t.final == 0 {
		t.final = p.ID
	}
	acts = append(acts, Notify{ID: p.ID, Attempt: p.Attempt, Final: final, Stop: p.Stop})
	if p.Savepoint {
		if r := t.savepoints[p.RequestID]; r != nil {
			r.Status, r.URI, r.EndedAt = Completed, e.URI, e.Now
		}
		return acts
	}
	t.consecutive = 0
	return append(acts, Retain{Keep: t.cfg.Retained})
}

// fail aborts the pending checkpoint; counted failures may fail the job.
func (t *Tracker) fail(acts []Action, now time.Time, reason Reason, msg string, count bool) []Action {
	p := t.pending
	p.Status, p.End, p.Reason, p.Failure = Failed, now, reason, msg
	t.pending = nil
	t.lastEnd = now
	t.counts.InProgress--
	t.counts.Failed++
	acts = append(acts, Abort{ID: p.ID, Attempt: p.Attempt, Savepoint: p.Savepoint, Reason: msg})
	if p.Savepoint {
		if r := t.savepoints[p.RequestID]; r != nil {
			t.endRequest(r, now, fmt.Sprintf("savepoint %d failed: %s", p.ID, msg))
		}
	}
	if p.Stop {
		t.stopped = false // the sources did not stop; periodic checkpoints go on
	}
	if !count {
		return acts
	}
	t.consecutive++
	if t.consecutive > t.cfg.TolerableFailures {
		n := t.consecutive
		t.consecutive = 0
		return append(acts, FailJob{Cause: fmt.Sprintf("checkpoint %d failed: %s (%d consecutive checkpoint failures; tolerable_failures is %d)",
			p.ID, msg, n, t.cfg.TolerableFailures)})
	}
	return acts
}

func (t *Tracker) endRequest(r *SavepointRequest, now time.Time, msg string) {
	r.Status, r.Failure, r.EndedAt = Failed, msg, now
}

// counts says whether the checkpoint's failure counts towards
// tolerable_failures: a periodic one's does; a savepoint's or a stop
// checkpoint's (a drain asked for it) does not, so neither fails the job.
func (c *Checkpoint) counts() bool { return !c.Savepoint && !c.Stop }
