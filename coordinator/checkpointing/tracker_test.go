package checkpointing

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/clock"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	src0 = TaskKey{"src", 0}
	src1 = TaskKey{"src", 1}
	sink = TaskKey{"sink", 0}
	all  = []Task{{src0, 2, true}, {src1, 2, true}, {sink, 1, false}}
)

// harness drives a tracker with a Manual clock and records every action.
type harness struct {
	t    *testing.T
	clk  *clock.Manual
	tr   *Tracker
	acts []Action
}

func newHarness(t *testing.T, cfg Config, lastID int64) *harness {
	cfg.JobID, cfg.JobName, cfg.JobSpec, cfg.MaxParallelism = "j1", "demo", []byte("name: demo"), 128
	h := &harness{t: t, clk: clock.NewManual(t0), tr: New(cfg, lastID)}
	h.do(Running{Now: h.clk.Now(), Attempt: 1, Tasks: all})
	return h
}

func (h *harness) do(ev Event) []Action {
	h.t.Helper()
	acts, err := h.tr.Handle(ev)
	if err != nil {
		h.t.Fatalf("%T: %v", ev, err)
	}
	h.acts = append(h.acts, acts...)
	// Commit is carried out at once, successfully, as the driver does.
	for _, a := range acts {
		if c, ok := a.(Commit); ok {
			h.do(Committed{Now: h.clk.Now(), ID: c.ID, URI: fmt.Sprintf("file:///cp/j1/chk-%d/_metadata", c.ID)})
		}
	}
	return acts
}

func (h *harness) advance(d time.Duration) []Action {
	h.t.Helper()
	h.clk.Advance(d)
	return h.do(Tick{Now: h.clk.Now()})
}

func (h *harness) ackAll(id int64) {
	h.t.Helper()
	for i, k := range []TaskKey{src0, src1, sink} {
		h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: id, Task: k,
			Operators: []*checkpointpb.OperatorState{{Node: k.Vertex, Handle: &checkpointpb.StateHandle{Path: k.String(), Size: 10}}},
			Stats:     &checkpointpb.SubtaskStats{SyncMs: 1, AsyncMs: 2, AlignmentMs: int64(i * 5), Bytes: 100}})
	}
}

// kinds renders actions compactly: "trigger 1", "abort 1", "commit 1",
// "notify 1", "retain 3", "fail".
func kinds(acts []Action) []string {
	var out []string
	for _, a := range acts {
		switch a := a.(type) {
		case Trigger:
			s := fmt.Sprintf("trigger %d", a.ID)
			if a.Savepoint {
				s += " savepoint"
			}
			if a.Stop {
				s += " stop"
			}
			out = append(out, s)
		case Abort:
			out = append(out, fmt.Sprintf("abort %d", a.ID))
		case Commit:
			out = append(out, fmt.Sprintf("commit %d", a.ID))
		case Notify:
			s := fmt.Sprintf("notify %d", a.ID)
			if a.Final {
				s += " final"
			}
			out = append(out, s)
		case Retain:
			out = append(out, fmt.Sprintf("retain %d", a.Keep))
		case FailJob:
			out = append(out, "fail")
		}
	}
	return out
}

func (h *harness) want(want ...string) {
	h.t.Helper()
	got := kinds(h.acts)
	h.acts = nil
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("actions %q, want %q", got, want)
	}
}

func TestTriggerAckComplete(t *testing.T) {
	h := newHarness(t, Config{Interval: 10 * time.Second}, 0)
	h.advance(9 * time.Second)
	h.want()
	h.advance(time.Second)
	h.want("trigger 1")
	// Acks from another attempt, for another id, or from an unknown task
	// are ignored; a duplicate counts once.
	h.do(Ack{Now: h.clk.Now(), Attempt: 0, ID: 1, Task: src0})
	h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: 7, Task: src0})
	h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: TaskKey{"nope", 0}})
	h.clk.Advance(300 * time.Millisecond)
	h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: src0, Stats: &checkpointpb.SubtaskStats{Bytes: 5, AlignmentMs: 3}})
	h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: src0})
	h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: src1, Stats: &checkpointpb.SubtaskStats{Bytes: 7}})
	h.want()
	if c := h.tr.Pending(); c == nil || c.acked != 2 {
		t.Fatalf("pending %+v", c)
	}
	h.clk.Advance(200 * time.Millisecond)
	h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: sink, Stats: &checkpointpb.SubtaskStats{Bytes: 11, AlignmentMs: 9},
		Operators: []*checkpointpb.OperatorState{{Node: "sink"}}})
	h.want("commit 1", "notify 1", "retain 3")
	c := h.tr.Latest()
	if c == nil || c.ID != 1 || c.Status != Completed || c.Size != 23 || c.Duration() != 500*time.Millisecond ||
		c.URI != "file:///cp/j1/chk-1/_metadata" || c.MaxAlignmentMs() != 9 {
		t.Fatalf("latest %+v", c)
	}
	if k, d, ok := c.Slowest(); !ok || k != sink || d != 500*time.Millisecond {
		t.Fatalf("slowest %v %v %v", k, d, ok)
	}
	if got := h.tr.Counts(); got != (Counts{Triggered: 1, Completed: 1}) {
		t.Fatalf("counts %+v", got)
	}
}

func TestCommitMetadata(t *testing.T) {
	h := newHarness(t, Config{Interval: time.Second}, 0)
	h.advance(time.Second)
	var commit Commit
	for _, k := range []TaskKey{src0, src1, sink} {
		acts, _ := h.tr.Handle(Ack{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: k,
			Operators: []*checkpointpb.OperatorState{{Node: k.Vertex}}, Stats: &checkpointpb.SubtaskStats{SyncMs: 4}})
		for _, a := range acts {
			if c, ok := a.(Commit); ok {
				commit = c
			}
		}
	}
	md := commit.Metadata
	if md == nil || md.GetFormatVersion() != 1 || md.GetJobId() != "j1" || md.GetCheckpointId() != 1 || string(md.GetJobSpec()) != "name: demo" ||
		md.GetMaxParallelism() != 128 || len(md.GetSubtasks()) != 3 || md.GetTriggerUnixMs() != t0.Add(time.Second).UnixMilli() {
		t.Fatalf("metadata %v", md)
	}
	s := md.GetSubtasks()[1]
	if s.GetVertexId() != "src" || s.GetSubtask() != 1 || s.GetParallelism() != 2 || s.GetStats().GetSyncMs() != 4 || s.GetOperators()[0].GetNode() != "src" {
		t.Fatalf("subtask %v", s)
	}
	// A failed commit is a failed checkpoint.
	acts, _ := h.tr.Handle(Committed{Now: h.clk.Now(), ID: 1, Err: errors.New("disk full")})
	if got := kinds(acts); !reflect.DeepEqual(got, []string{"abort 1", "fail"}) {
		t.Fatalf("actions %q", got)
	}
	if c := h.tr.Checkpoint(1); c.Status != Failed || c.Reason != ReasonCommitFailed || !strings.Contains(c.Failure, "disk full") {
		t.Fatalf("%+v", c)
	}
}

func TestDeclineAndTimeoutAbort(t *testing.T) {
	cases := []struct {
		name   string
		fail   func(h *harness)
		reason Reason
		msg    string
		after  []string // actions with the abort
	}{
		{"decline", func(h *harness) {
			h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: src0})
			h.do(Decline{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: src1, Reason: "state upload failed"})
		}, ReasonDeclined, "subtask src[1] declined: state upload failed", nil},
		{"timeout", func(h *harness) {
			h.advance(59 * time.Second)
			if h.tr.Pending() == nil {
				h.t.Fatal("aborted before the timeout")
			}
			h.advance(time.Second)
		}, ReasonTimeout, "timeout of 1m0s (0 of 3 subtasks acknowledged)", []string{"trigger 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Config{Interval: 10 * time.Second, Timeout: time.Minute, TolerableFailures: 5}, 0)
			h.advance(10 * time.Second)
			h.want("trigger 1")
			// A decline for another id or attempt is ignored.
			h.do(Decline{Now: h.clk.Now(), Attempt: 1, ID: 9, Task: src0})
			h.do(Decline{Now: h.clk.Now(), Attempt: 2, ID: 1, Task: src0})
			h.want()
			c.fail(h)
			h.want(append([]string{"abort 1"}, c.after...)...)
			cp := h.tr.Checkpoint(1)
			if cp.Status != Failed || cp.Reason != c.reason || !strings.Contains(cp.Failure, c.msg) {
				t.Fatalf("%+v", cp)
			}
			// Late acks for the aborted checkpoint are ignored; the job
			// keeps checkpointing with the next id.
			h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: 1, Task: sink})
			if c.after == nil {
				h.advance(10 * time.Second)
				h.want("trigger 2")
			}
			if got := h.tr.Counts(); got != (Counts{Triggered: 2, InProgress: 1, Failed: 1}) {
				t.Fatalf("counts %+v", got)
			}
		})
	}
}

func TestIntervalAndMinPause(t *testing.T) {
	cases := []struct {
		name     string
		interval time.Duration
		minPause time.Duration
		took     time.Duration // how long checkpoint 1 takes
		next     time.Duration // when checkpoint 2 is triggered, after 1 ended
	}{
		{"interval from the trigger", 10 * time.Second, 0, 3 * time.Second, 7 * time.Second},
		{"min pause after a slow checkpoint", 10 * time.Second, 5 * time.Second, 8 * time.Second, 5 * time.Second},
		{"overdue triggers right after the end", 10 * time.Second, 0, 15 * time.Second, 0},
		{"min pause longer than the interval", time.Second, 4 * time.Second, 100 * time.Millisecond, 4 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Config{Interval: c.interval, MinPause: c.minPause, Timeout: time.Hour}, 0)
			h.advance(c.interval)
			h.want("trigger 1")
			h.advance(c.took)
			h.want()
			h.ackAll(1)
			if c.next == 0 {
				h.want("commit 1", "notify 1", "retain 3", "trigger 2")
				return
			}
			h.want("commit 1", "notify 1", "retain 3")
			{
				h.advance(c.next - time.Millisecond)
				h.want()
				h.advance(time.Millisecond)
			}
			h.want("trigger 2")
		})
	}
}

func TestOneInFlightAndIDsNeverReused(t *testing.T) {
	h := newHarness(t, Config{Interval: time.Second, Timeout: 5 * time.Second, TolerableFailures: 100}, 41)
	h.advance(time.Second)
	h.want("trigger 42")
	for range 3 {
		h.advance(time.Second) // due again, but 42 is in flight
	}
	h.want()
	h.advance(2 * time.Second) // timeout: 42 aborted, 43 due at once
	h.want("abort 42", "trigger 43")
	// A restart aborts 43 without counting it; the new attempt goes on
	// with 44.
	h.do(Stopped{Now: h.clk.Now(), Reason: "worker lost"})
	h.want("abort 43")
	h.advance(time.Minute)
	h.want()
	h.do(Running{Now: h.clk.Now(), Attempt: 2, Tasks: all})
	h.advance(time.Second)
	h.want("trigger 44")
	if h.tr.consecutive != 1 {
		t.Fatalf("consecutive failures %d (the stop must not count)", h.tr.consecutive)
	}
	if h.tr.NextID() != 45 {
		t.Fatalf("next id %d", h.tr.NextID())
	}
}

func TestTolerableFailures(t *testing.T) {
	cases := []struct {
		tolerable int
		// outcome of each checkpoint: 'f' fails, 'c' completes
		outcomes string
		failAt   int // index of the checkpoint whose failure fails the job; -1 none
	}{
		{0, "f", 0},
		{1, "ff", 1},
		{1, "fcf", -1},
		{2, "ffcfff", 5},
		{3, "fff", -1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d/%s", c.tolerable, c.outcomes), func(t *testing.T) {
			h := newHarness(t, Config{Interval: time.Second, TolerableFailures: c.tolerable}, 0)
			failedAt := -1
			for i, o := range c.outcomes {
				h.advance(time.Second)
				id := h.tr.Pending().ID
				if o == 'c' {
					h.ackAll(id)
				} else {
					h.do(Decline{Now: h.clk.Now(), Attempt: 1, ID: id, Task: sink, Reason: "no"})
				}
				for _, k := range kinds(h.acts) {
					if k == "fail" {
						failedAt = i
					}
				}
				h.acts = nil
			}
			if failedAt != c.failAt {
				t.Fatalf("job failed at checkpoint %d, want %d", failedAt, c.failAt)
			}
		})
	}
}

func TestSavepoints(t *testing.T) {
	h := newHarness(t, Config{Interval: 10 * time.Second, Timeout: time.Minute, TolerableFailures: 1}, 0)
	// Nothing in flight: triggered at once, counted apart from checkpoints
	// (its failure does not fail the job), never retained.
	h.do(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp-a"})
	h.want("trigger 1 savepoint")
	if _, err := h.tr.Handle(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp-a"}); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("duplicate: %v", err)
	}
	h.ackAll(1)
	h.want("commit 1", "notify 1")
	if r := h.tr.Savepoint("sp-a"); r.Status != Completed || r.CheckpointID != 1 || !strings.Contains(r.URI, "chk-1") {
		t.Fatalf("request %+v", r)
	}
	// While a checkpoint is in flight, the savepoint waits and goes right
	// after it.
	h.advance(10 * time.Second)
	h.want("trigger 2")
	h.do(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp-b", Stop: true})
	h.want()
	if _, err := h.tr.Handle(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp-c"}); !errors.Is(err, ErrStopping) {
		t.Fatalf("savepoint after a stop request: %v", err)
	}
	h.do(Decline{Now: h.clk.Now(), Attempt: 1, ID: 2, Task: src0, Reason: "x"})
	h.want("abort 2", "trigger 3 savepoint stop")
	h.ackAll(3)
	h.want("commit 3", "notify 3")
	// After a stop savepoint no more checkpoints are triggered.
	h.advance(time.Hour)
	h.want()
	if r := h.tr.Savepoint("sp-b"); r.Status != Completed || !r.Stop {
		t.Fatalf("%+v", r)
	}
	if got := len(h.tr.Savepoints()); got != 2 {
		t.Fatalf("%d requests", got)
	}
}

func TestSavepointRefusedAndFailed(t *testing.T) {
	tr := New(Config{}, 0)
	if _, err := tr.Handle(TriggerSavepoint{Now: t0, RequestID: "x"}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("not running: %v", err)
	}
	h := newHarness(t, Config{Timeout: time.Minute}, 0) // no periodic checkpoints
	h.advance(time.Hour)
	h.want()
	h.do(TaskFinished{Now: h.clk.Now(), Attempt: 1, Task: src0})
	if _, err := h.tr.Handle(TriggerSavepoint{Now: t0, RequestID: "x"}); !errors.Is(err, ErrTaskEnded) {
		t.Fatalf("finished task: %v", err)
	}
	h.do(Running{Now: h.clk.Now(), Attempt: 2, Tasks: all})
	h.do(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp"})
	h.want("trigger 1 savepoint")
	h.advance(time.Minute)
	h.want("abort 1")
	if r := h.tr.Savepoint("sp"); r.Status != Failed || !strings.Contains(r.Failure, "timeout") {
		t.Fatalf("%+v", r)
	}
	// A queued request fails when the job stops.
	h.do(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp2"})
	h.do(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp3"})
	h.want("trigger 2 savepoint")
	h.do(Stopped{Now: h.clk.Now(), Reason: "cancelled"})
	h.want("abort 2")
	if r := h.tr.Savepoint("sp3"); r.Status != Failed || !strings.Contains(r.Failure, "cancelled") {
		t.Fatalf("%+v", r)
	}
}

func TestFinishedTaskStopsPeriodicTriggers(t *testing.T) {
	h := newHarness(t, Config{Interval: time.Second}, 0)
	h.do(TaskFinished{Now: h.clk.Now(), Attempt: 1, Task: src1})
	h.advance(time.Minute)
	h.want()
}

// A checkpoint every subtask acknowledged at the end of its input is the
// final one: its Notify says so, and no checkpoint is triggered after it
// (the sources end). One that some subtask took before the end is not.
// A new attempt starts over.
func TestFinalCheckpoint(t *testing.T) {
	h := newHarness(t, Config{Interval: time.Second}, 0)
	ack := func(id int64, k TaskKey, eoi bool) {
		h.do(Ack{Now: h.clk.Now(), Attempt: h.tr.attempt, ID: id, Task: k, EndOfInput: eoi})
	}
	h.advance(time.Second)
	h.want("trigger 1")
	ack(1, src0, true)
	ack(1, src1, true)
	ack(1, sink, false) // its input had not ended everywhere
	h.want("commit 1", "notify 1", "retain 3")
	// A savepoint every subtask took at the end of its input is not the
	// final checkpoint: restores take checkpoints, so the final one must
	// be one.
	h.do(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp"})
	h.want("trigger 2 savepoint")
	ack(2, src0, true)
	ack(2, src1, true)
	ack(2, sink, true)
	h.want("commit 2", "notify 2")
	if h.tr.Final() != 0 {
		t.Fatalf("final %d after a savepoint", h.tr.Final())
	}
	h.advance(time.Second)
	h.want("trigger 3")
	ack(3, src0, true)
	ack(3, src1, true)
	ack(3, sink, true)
	h.want("commit 3", "notify 3 final", "retain 3")
	if h.tr.Final() != 3 {
		t.Fatalf("final %d, want 3", h.tr.Final())
	}
	h.advance(time.Minute)
	h.want()
	if _, err := h.tr.Handle(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp2"}); !errors.Is(err, ErrInputEnded) {
		t.Fatalf("savepoint after the final checkpoint: %v", err)
	}
	// A restart (the job failed before every subtask ended) triggers
	// again.
	h.do(Stopped{Now: h.clk.Now(), Reason: "failed"})
	h.do(Running{Now: h.clk.Now(), Attempt: 2, Tasks: all})
	if h.tr.Final() != 0 {
		t.Fatal("final kept across attempts")
	}
	h.advance(time.Second)
	h.want("trigger 4")
}

// Once every source subtask reports the end of its input, a checkpoint is
// triggered at once, not after the interval; one report is not enough,
// reports from another attempt do not count, and the early trigger happens
// once per attempt.
func TestInputEndedTriggersAtOnce(t *testing.T) {
	h := newHarness(t, Config{Interval: time.Minute, TolerableFailures: 5}, 0)
	h.do(Running{Now: h.clk.Now(), Attempt: 2, Tasks: all})
	h.do(InputEnded{Now: h.clk.Now(), Attempt: 2, Task: src0})
	h.do(InputEnded{Now: h.clk.Now(), Attempt: 1, Task: src1})
	h.do(InputEnded{Now: h.clk.Now(), Attempt: 2, Task: sink})
	h.want()
	h.do(InputEnded{Now: h.clk.Now(), Attempt: 2, Task: src1})
	h.want("trigger 1")
	// Failed, it is not repeated early: the next comes after the interval.
	h.do(Decline{Now: h.clk.Now(), Attempt: 2, ID: 1, Task: sink, Reason: "x"})
	h.want("abort 1")
	h.advance(59 * time.Second)
	h.want()
	h.advance(time.Second)
	h.want("trigger 2")
}

func TestHistoryBounded(t *testing.T) {
	h := newHarness(t, Config{Interval: time.Second, History: 3}, 0)
	for i := int64(1); i <= 5; i++ {
		h.advance(time.Second)
		h.ackAll(i)
	}
	hs := h.tr.History()
	if len(hs) != 3 || hs[0].ID != 3 || hs[2].ID != 5 || h.tr.Checkpoint(1) != nil {
		t.Fatalf("history %d, first %d", len(hs), hs[0].ID)
	}
	if h.tr.Counts().Completed != 5 {
		t.Fatalf("%+v", h.tr.Counts())
	}
}

// TestAckWorkLinear: a checkpoint of n subtasks finds each acknowledging
// subtask directly, so its acknowledgements (and repeats of them) examine
// O(n) subtasks in all; a scan per acknowledgement examined n²/2, 2 million
// for 2,000 subtasks.
func TestAckWorkLinear(t *testing.T) {
	const n = 1000
	var tasks []Task
	for i := range n {
		tasks = append(tasks, Task{TaskKey{"src", i}, n, true}, Task{TaskKey{"sink", i}, n, false})
	}
	h := &harness{t: t, clk: clock.NewManual(t0), tr: New(Config{JobID: "j1", Interval: time.Second}, 0)}
	h.do(Running{Now: h.clk.Now(), Attempt: 1, Tasks: tasks})
	h.advance(time.Second)
	p := h.tr.Pending()
	if p == nil {
		t.Fatal("no checkpoint triggered")
	}
	h.tr.scanned = 0
	for range 2 { // each acknowledgement twice: the repeat is ignored
		for _, tk := range tasks {
			h.do(Ack{Now: h.clk.Now(), Attempt: 1, ID: p.ID, Task: tk.Key})
		}
	}
	if p.Status != Completed {
		t.Fatalf("checkpoint %s, want COMPLETED", p.Status)
	}
	if limit := 3 * len(tasks); h.tr.scanned > limit {
		t.Errorf("%d acknowledgements of %d subtasks examined %d subtasks, want at most %d", 2*len(tasks), len(tasks), h.tr.scanned, limit)
	}
}
