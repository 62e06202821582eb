// Package optest is a test harness for operators, in the manner of Flink's
// OneInputStreamOperatorTestHarness: push records and watermarks into one
// operator, take snapshots and restore them, and inspect what it emitted on
// its main output, its side outputs and as watermarks.
package optest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/weir-stream/weir/dataflow"
)

// Context returns an operator context for subtask 0 of 1 of the named node,
// owning every key group, with fresh counters and the fail error policy.
func Context(node string) *dataflow.Context {
	return &dataflow.Context{
		JobID:          "test-job",
		JobName:        "test",
		Node:           node,
		Subtask:        0,
		Parallelism:    1,
		MaxParallelism: dataflow.DefaultMaxParallelism,
		KeyGroups:      dataflow.KeyGroupRange{Start: 0, End: dataflow.DefaultMaxParallelism - 1},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:        &dataflow.Counters{},
		OnError:        dataflow.FailOnError{Node: node},
	}
}

// SubtaskContext returns the context of subtask i of n of the named node
// with maxParallelism key groups.
func SubtaskContext(node string, maxParallelism, n, i int) *dataflow.Context {
	ctx := Context(node)
	ctx.Subtask, ctx.Parallelism, ctx.MaxParallelism = i, n, maxParallelism
	ctx.KeyGroups = dataflow.KeyGroupRangeFor(maxParallelism, n, i)
	return ctx
}

// Harness drives one operator. It opens the operator on first use (after a
// Restore, if any) and checks on every record that the operator did not
// change the record it was given. Not safe for concurrent use.
type Harness struct {
	t      testing.TB
	op     dataflow.Operator
	ctx    *dataflow.Context
	out    *Output
	opened bool
	closed bool
}

// New returns a harness for op running in ctx (Context(“op”) when nil).
func New(t testing.TB, op dataflow.Operator, ctx *dataflow.Context) *Harness {
	t.Helper()
	if ctx == nil {
		ctx = Context("op")
	}
	return &Harness{t: t, op: op, ctx: ctx, out: &Output{}}
}

// Operator returns the operator under test.
func (h *Harness) Operator() dataflow.Operator { return h.op }

// Context returns the context the operator runs in.
func (h *Harness) Context() *dataflow.Context { return h.ctx }

// Metrics returns the context's counters.
func (h *Harness) Metrics() *dataflow.Counters { return h.ctx.Metrics }

// Open opens the operator; the Process methods do so when needed.
func (h *Harness) Open() error {
	if h.opened {
		return nil
	}
	h.opened = true
	return h.op.Open(h.ctx)
}

// ProcessRecord hands a copy of r to the operator.
func (h *Harness) ProcessRecord(r dataflow.Record) error {
	h.t.Helper()
	if err := h.Open(); err != nil {
		return err
	}
	fields := r.Fields
	// fmt prints maps sorted and nested values in full, so this catches a
	// change anywhere in the record's value (NaN included).
	before := fmt.Sprintf("%#v", fields)
	err := h.op.Process(&r, h.out)
	if after := fmt.Sprintf("%#v", fields); after != before {
		h.t.Errorf("optest: operator changed its input record's fields: before %s, after %s", before, after)
	}
	return err
}

// ProcessRecords hands the records over in order and stops at the first
// error.
func (h *Harness) ProcessRecords(rs ...dataflow.Record) error {
	h.t.Helper()
	for i, r := range rs {
		if err := h.ProcessRecord(r); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return nil
}

// ProcessWatermark hands a watermark to the operator when it handles event
// time, else forwards it as the task would.
func (h *Harness) ProcessWatermark(wm int64) error {
	if err := h.Open(); err != nil {
		return err
	}
	if wh, ok := h.op.(dataflow.WatermarkHandler); ok {
		return wh.ProcessWatermark(wm, h.out)
	}
	return h.out.EmitWatermark(wm)
}

// EndOfStream sends MaxWatermark and closes the operator, as the task does
// at the end of a bounded stream.
func (h *Harness) EndOfStream() error {
	if err := h.ProcessWatermark(dataflow.MaxWatermark); err != nil {
		return err
	}
	return h.Close()
}

// Snapshot takes the operator's snapshot.
func (h *Harness) Snapshot(checkpointID int64) ([]byte, error) {
	s, ok := h.op.(dataflow.Snapshotter)
	if !ok {
		return nil, errors.New("optest: operator has no state (not a dataflow.Snapshotter)")
	}
	return s.Snapshot(checkpointID)
}

// Restore restores the operator from snapshots; call it before the first
// record.
func (h *Harness) Restore(states ...[]byte) error {
	s, ok := h.op.(dataflow.Snapshotter)
	if !ok {
		return errors.New("optest: operator has no state (not a dataflow.Snapshotter)")
	}
	return s.Restore(states)
}

// Close closes the operator once.
func (h *Harness) Close() error {
	if h.closed {
		return nil
	}
	h.closed = true
	return h.op.Close(h.out)
}

// Output returns the collected output.
func (h *Harness) Output() *Output { return h.out }

// Records returns the records emitted on the main output so far.
func (h *Harness) Records() []dataflow.Record { return h.out.Records() }

// SideOutput returns the records emitted to the side output tag so far.
func (h *Harness) SideOutput(tag string) []dataflow.Record { return h.out.SideOutput(tag) }

// Watermarks returns the watermarks emitted so far.
func (h *Harness) Watermarks() []int64 { return h.out.Watermarks() }

// Events returns everything emitted so far, in order.
func (h *Harness) Events() []Event { return h.out.Events() }

// Clear forgets the output collected so far.
func (h *Harness) Clear() { h.out.Clear() }

// Event is one thing an operator emitted.
type Event struct {
	Kind      dataflow.Kind // KindRecord or KindWatermark
	Tag       string        // side output tag; "" for the main output
	Record    dataflow.Record
	Watermark int64
}

// Output is a dataflow.Output that collects what it is given. The zero
// value is ready to use.
type Output struct {
	events []Event
}

// Emit records r on the main output.
func (o *Output) Emit(r *dataflow.Record) error {
	o.events = append(o.events, Event{Kind: dataflow.KindRecord, Record: *r})
	return nil
}

// EmitSide records r on side output tag.
func (o *Output) EmitSide(tag string, r *dataflow.Record) error {
	o.events = append(o.events, Event{Kind: dataflow.KindRecord, Tag: tag, Record: *r})
	return nil
}

// EmitWatermark records a watermark.
func (o *Output) EmitWatermark(wm int64) error {
	o.events = append(o.events, Event{Kind: dataflow.KindWatermark, Watermark: wm})
	return nil
}

// Events returns everything emitted, in order.
func (o *Output) Events() []Event { return slices.Clone(o.events) }

// Records returns the main-output records.
func (o *Output) Records() []dataflow.Record { return o.records("") }

// SideOutput returns the records of side output tag.
func (o *Output) SideOutput(tag string) []dataflow.Record { return o.records(tag) }

func (o *Output) records(tag string) []dataflow.Record {
	var rs []dataflow.Record
	for _, e := range o.events {
		if e.Kind == dataflow.KindRecord && e.Tag == tag {
			rs = append(rs, e.Record)
		}
	}
	return rs
}

// Watermarks returns the emitted watermarks.
func (o *Output) Watermarks() []int64 {
	var wms []int64
	for _, e := range o.events {
		if e.Kind == dataflow.KindWatermark {
			wms = append(wms, e.Watermark)
		}
	}
	return wms
}

// Clear forgets what was collected.
func (o *Output) Clear() { o.events = nil }

// Discard is a dataflow.Output that drops everything (benchmarks).
type Discard struct{ Records, Side, Watermarks int }

// Emit counts r.
func (d *Discard) Emit(*dataflow.Record) error { d.Records++; return nil }

// EmitSide counts r.
func (d *Discard) EmitSide(string, *dataflow.Record) error { d.Side++; return nil }

// EmitWatermark counts wm.
func (d *Discard) EmitWatermark(int64) error { d.Watermarks++; return nil }
