package operator

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// LateTag is the side output of records too late for every window they
// belong to (late: side_output).
const LateTag = "late"

// Result fields of a window besides the key and the aggregates.
const (
	FieldWindowStart = "window_start"
	FieldWindowEnd   = "window_end"
)

// Event times and window shapes are bounded so that window arithmetic
// (start+size, end-1+lateness) never overflows int64.
const (
	maxEventTime = 1 << 62
	maxSpan      = 1 << 60
	// maxWindowsPerRecord bounds size/slide of sliding windows: a record
	// updates that many windows.
	maxWindowsPerRecord = 1000
)

var errNoTime = errors.New("window: record has no event time (set event_time on the source)")

type aggregate struct {
	name string
	fn   aggFn
	arg  *expr.Program
	none bool // count(): no argument
}

// winAcc is the keyed state of one window of one key (namespace: the
// window's end): its aggregate cells, and whether it has fired since its
// last update.
type winAcc struct {
	fired bool
	cells []cell
}

// window is a keyed event-time window operator (tumbling or sliding,
// aligned to the epoch) with Flink's EventTimeTrigger semantics: a window
// [start,end) fires once the watermark reaches end-1, and while the
// watermark is below end-1+allowed_lateness a late record updates the window
// and fires it again.
//
// Its state lives in the keyed-state backend (dataflow/state), like a user
// operator's: one value per (key, window end), and event-time timers per
// window, one at end-1 that fires it and one at end-1+allowed_lateness that
// purges it (the same timer when the lateness is 0), so a watermark touches
// only the windows it fires or purges, in the backend's (time, key) order.
type window struct {
	base
	size, slide, lateness int64
	// gap: session windows (window_session.go), their state in sess.
	gap                int64
	sess               *state.Value[[]sessAcc]
	sessions           int64 // open sessions, for the state size estimate
	lateSide           bool
	keyField           string
	aggs               []aggregate
	shape              *dataflow.Shape // of results: key, window_start, window_end, aggregates
	hasExpr, hasMinMax bool
	// procTime: tumbling windows on processing time (time: processing),
	// fired by the backend's processing-time timers (window_proctime.go).
	procTime  bool
	curTime   int64           // the time of the record being folded (first, last, arg_*)
	curFields dataflow.Fields // its fields (arg_max, arg_min)

	wm      int64
	backend state.Backend
	timers  *state.Timers
	wins    *state.Value[winAcc]
	fireFn  func(state.Timer) error
	foldFn  func(*winAcc, bool) (bool, error)
	fold    foldResult
	chunk   []cell          // cells not handed out yet (newCells)
	out     dataflow.Output // while timers fire

	snapKeys int64 // distinct keys in the last snapshot

	// keyBytes, newWindows and stateGauge: the state size estimate
	// (window_state.go).
	keyBytes   int64
	newWindows int
	stateGauge *dataflow.StateSize

	vals []any           // the current record's aggregate arguments
	rec  dataflow.Record // the result being emitted
}

func newWindow(b base, w *spec.Window, keyField string) (*window, error) {
	op := &window{base: b, keyField: keyField, wm: math.MinInt64}
	shapes := 0
	for _, set := range []bool{w.Tumbling != 0, w.Sliding != nil, w.Session != nil} {
		if set {
			shapes++
		}
	}
	switch {
	case shapes > 1:
		return nil, errors.New("window: set one of tumbling, sliding and session, not both")
	case w.Session != nil:
		gap, err := span("window session gap", w.Session.Gap)
		if err != nil {
			return nil, err
		}
		// size is the gap and slide 0 in the snapshot header.
		op.gap, op.size = gap, gap
	case w.Tumbling != 0:
		size, err := span("window tumbling", w.Tumbling)
		if err != nil {
			return nil, err
		}
		op.size, op.slide = size, size
	case w.Sliding != nil:
		size, err := span("window sliding size", w.Sliding.Size)
		if err != nil {
			return nil, err
		}
		slide, err := span("window sliding slide", w.Sliding.Slide)
		if err != nil {
			return nil, err
		}
		if size/slide > maxWindowsPerRecord {
			return nil, fmt.Errorf("window: sliding size %s is more than %d times the slide %s; every record would update that many windows",
				w.Sliding.Size.D(), maxWindowsPerRecord, w.Sliding.Slide.D())
		}
		op.size, op.slide = size, slide
	default:
		return nil, errors.New("window: set tumbling or sliding (or session)")
	}
	if w.AllowedLateness < 0 {
		return nil, fmt.Errorf("window: allowed_lateness %s is negative", w.AllowedLateness.D())
	}
	op.lateness = w.AllowedLateness.D().Milliseconds()
	switch w.Late {
	case "", "drop":
	case "side_output":
		op.lateSide = true
	default:
		return nil, fmt.Errorf("window: late %q: want drop or side_output", w.Late)
	}
	switch w.Time {
	case "", spec.TimeEvent:
	case spec.TimeProcessing:
		if w.Sliding != nil || w.Session != nil || op.lateness != 0 || op.lateSide {
			return nil, errors.New("window: processing-time windows are tumbling, without allowed_lateness or a late side output")
		}
		op.procTime = true
	default:
		return nil, fmt.Errorf("window: time %q: want event or processing", w.Time)
	}
	if keyField == FieldWindowStart || keyField == FieldWindowEnd {
		// Refused at submit (spec validation); this keeps a spec that got
		// past it from panicking in MustShape below.
		return nil, fmt.Errorf("window: the key field %q clashes with the window's own %s field; name the key with key_by.as", keyField, keyField)
	}
	names := map[string]bool{keyField: true, FieldWindowStart: true, FieldWindowEnd: true}
	for _, a := range w.Aggregates {
		if names[a.Name] || a.Name == "" {
			return nil, fmt.Errorf("window: aggregate name %q is empty or used twice (the key is %q; %s and %s are taken)",
				a.Name, keyField, FieldWindowStart, FieldWindowEnd)
		}
		names[a.Name] = true
		fn, arg, err := spec.ParseAggregate(a.Expr)
		if err != nil {
			return nil, fmt.Errorf("window: %w", err)
		}
		f, _ := aggFnNamed(fn)
		ag := aggregate{name: a.Name, fn: f, none: arg == ""}
		if arg != "" {
			ag.arg, err = compile(fmt.Sprintf("window aggregate %q", a.Name), arg, expr.Any)
			if err != nil {
				return nil, err
			}
			op.hasExpr = true
		}
		if f.compares() {
			op.hasMinMax = true
		}
		op.aggs = append(op.aggs, ag)
	}
	op.vals = make([]any, len(op.aggs))
	shape := []string{keyField, FieldWindowStart, FieldWindowEnd}
	for _, a := range op.aggs {
		shape = append(shape, a.name)
	}
	op.shape = dataflow.MustShape(shape...) // distinct: checked above
	if err := op.newBackend(); err != nil {
		return nil, err
	}
	return op, nil
}

func span(what string, d spec.Duration) (int64, error) {
	ms := d.D().Milliseconds()
	if d.D() <= 0 || ms < 1 || d.D()%time.Millisecond != 0 || ms > maxSpan {
		return 0, fmt.Errorf("%s: %s must be a positive whole number of milliseconds", what, d.D())
	}
	return ms, nil
}

func (w *window) reset() {
	_ = w.backend.Restore(nil) // restoring nothing empties the backend; it cannot fail
	w.keyBytes, w.sessions = 0, 0
}

// Process adds a record to its windows.
func (w *window) Process(r *dataflow.Record, out dataflow.Output) error {
	if w.procTime {
		return w.processProcTime(r)
	}
	t := r.Time
	if t == dataflow.NoTime {
		return w.fail(r, errNoTime)
	}
	if t >= maxEventTime || t <= -maxEventTime {
		return w.fail(r, fmt.Errorf("window: event time %d out of range", t))
	}
	key, err := normKey(r.Key)
	if err != nil {
		return w.fail(r, fmt.Errorf("window: %w (key the stream with key_by)", err))
	}
	w.backend.SetCurrentKey(key)
	if w.hasExpr {
		if err := w.evalArgs(r); err != nil {
			return w.fail(r, err)
		}
	}
	w.curTime, w.curFields = t, r.Fields
	if w.gap > 0 {
		return w.processSession(key, r, out)
	}
	first, last := w.starts(t)
	if w.hasMinMax {
		if err := w.checkConflicts(first, last); err != nil {
			clear(w.vals)
			return w.fail(r, err)
		}
	}
	// Late against the window's watermark, or against the watermark of the
	// record's own source partition: the latter makes lateness the same in
	// every replay (dataflow.Record.SourceWatermark).
	wm := w.wm
	if r.SourceWatermark != 0 && r.SourceWatermark > wm {
		wm = r.SourceWatermark
	}
	inAny, onTime := false, false
	for start := first; start <= last; start += w.slide {
		end := start + w.size
		if end <= t {
			continue // gap between sliding windows
		}
		inAny = true
		if end-1+w.lateness <= wm {
			continue // late for this window
		}
		onTime = true
		if err := w.add(key, end, out); err != nil {
			clear(w.vals)
			return err
		}
	}
	clear(w.vals)
	if inAny && !onTime {
		return w.late(r, out)
	}
	return nil
}

// starts returns the first and last start of the windows t belongs to:
// [start, start+size) with start aligned to slide and start <= t <
// start+size. first > last when t falls in a gap (slide > size).
func (w *window) starts(t int64) (first, last int64) {
	last = t - mod(t, w.slide)
	first = t - w.size - mod(t-w.size, w.slide) + w.slide
	return first, last
}

func (w *window) evalArgs(r *dataflow.Record) error {
	env := recordEnv{fields: r.Fields}
	for i := range w.aggs {
		a := &w.aggs[i]
		if a.none {
			continue
		}
		v, err := env.eval(a.arg)
		if err != nil {
			clear(w.vals)
			return fmt.Errorf("window aggregate %q: %w", a.name, err)
		}
		if err := checkArg(a.fn, v); err != nil {
			clear(w.vals)
			return fmt.Errorf("window aggregate %q: %s %w", a.name, a.fn, err)
		}
		w.vals[i] = v
	}
	return nil
}

// checkConflicts refuses a record whose min/max value cannot be compared
// with the extreme of one of its windows, before any window changes.
func (w *window) checkConflicts(first, last int64) error {
	for start := first; start <= last; start += w.slide {
		acc, ok, err := w.wins.Get(start + w.size)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for i := range w.aggs {
			if fn := w.aggs[i].fn; fn.compares() && acc.cells[i].conflicts(w.vals[i]) {
				return fmt.Errorf("window aggregate %q: %s cannot compare %s with %s",
					w.aggs[i].name, fn, typeName(w.vals[i]), typeName(acc.cells[i].v))
			}
		}
	}
	return nil
}

// add folds the current record into the current key's window ending at
// end, and fires it at once when the watermark has passed its end (a late
// record within the allowed lateness).
func (w *window) add(key any, end int64, out dataflow.Output) error {
	w.fold = foldResult{end: end}
	if err := w.wins.Update(end, w.foldFn); err != nil {
		return err
	}
	f := w.fold
	w.fold = foldResult{}
	if f.opened {
		w.windowOpened(key)
		if end-1 > w.wm {
			w.timers.RegisterEventTime(end, end-1)
		}
		if w.lateness > 0 {
			w.timers.RegisterEventTime(end, end-1+w.lateness)
		}
	}
	if f.refire {
		w.timers.RegisterEventTime(end, end-1)
	}
	if f.emit != nil {
		return w.emit(key, end, f.emit, out)
	}
	return nil
}

// newCells takes a window's cells from a chunk shared with the windows
// opened about the same time (and so purged about the same time): fewer
// allocations, and the cells of the windows being updated stay close in
// memory.
func (w *window) newCells() []cell {
	n := len(w.aggs)
	if len(w.chunk) < n {
		w.chunk = make([]cell, n*cellChunk)
	}
	c := w.chunk[:n:n]
	w.chunk = w.chunk[n:]
	return c
}

const cellChunk = 64

// foldResult passes add's window end to foldInto and what to do after the
// update back.
type foldResult struct {
	end    int64
	opened bool   // a new window
	refire bool   // a fired window changed before the watermark got to its end again
	emit   []cell // fire now: the watermark has passed the window's end
}

// foldInto is the state update of add (state.Value.Update).
func (w *window) foldInto(acc *winAcc, exists bool) (bool, error) {
	f := &w.fold
	if !exists {
		acc.cells = w.newCells()
		f.opened = true
	}
	for i := range acc.cells {
		fn := w.aggs[i].fn
		if !fn.isArg() {
			acc.cells[i].add(fn, w.vals[i], w.curTime)
		} else if acc.cells[i].addArg(fn, w.vals[i], w.curTime) {
			acc.cells[i].rec = w.curFields.Map() // a new map: results hold on to the old one
		}
	}
	switch {
	case f.end-1 <= w.wm:
		// A late record within the allowed lateness fires its window again
		// (or for the first time when it is the window's first record).
		acc.fired = true
		f.emit = acc.cells
	case acc.fired:
		// Only after a restore that merged subtasks at different
		// watermarks: the update fires when the watermark gets here.
		acc.fired = false
		f.refire = true
	}
	return true, nil
}

func (w *window) late(r *dataflow.Record, out dataflow.Output) error {
	if w.lateSide {
		return out.EmitSide(LateTag, r)
	}
	if m := w.metrics(); m != nil {
		m.DroppedLate.Add(1)
	}
	return nil
}

// emit sends the result of window (key, end).
func (w *window) emit(key any, end int64, cells []cell, out dataflow.Output) error {
	return w.emitWindow(key, end-w.size, end, cells, out)
}

// emitWindow sends the result of the window [start, end) of key.
func (w *window) emitWindow(key any, start, end int64, cells []cell, out dataflow.Output) error {
	vals := make([]any, 3+len(w.aggs))
	vals[0], vals[1], vals[2] = key, start, end
	for i := range w.aggs {
		vals[3+i] = cells[i].result(w.aggs[i].fn)
	}
	w.rec = dataflow.Record{Key: key, Time: end - 1, Fields: dataflow.NewFields(w.shape, vals)}
	err := out.Emit(&w.rec)
	w.rec = dataflow.Record{}
	return err
}

// ProcessWatermark fires the windows whose end the watermark reached, in
// order of end and then key, purges the windows past their allowed
// lateness, and forwards the watermark. A watermark that does not advance
// is ignored.
func (w *window) ProcessWatermark(wm int64, out dataflow.Output) error {
	if w.procTime {
		return w.processingWatermark(wm, out)
	}
	if wm <= w.wm {
		return nil
	}
	w.wm = wm
	w.out = out
	err := w.timers.AdvanceWatermark(wm, w.fireFn)
	w.out = nil
	if err != nil {
		return err
	}
	w.publishStateSize()
	return out.EmitWatermark(wm)
}

// onTimer fires or purges the window of the timer's key that ends at the
// timer's namespace. A timer before the purge time (the fire timer, or a
// purge timer of a smaller allowed lateness restored from a savepoint)
// makes sure the purge timer of the current lateness is there.
func (w *window) onTimer(t state.Timer) error {
	end := t.Namespace
	acc, ok, err := w.wins.Get(end)
	if err != nil || !ok {
		return err
	}
	if end <= -maxEventTime || end >= maxEventTime+maxSpan {
		// Out of any window's range (only a corrupt restore gets here).
		return w.dropWindow(t.Key, end)
	}
	purge := t.Time >= end-1+w.lateness
	if t.Time == end-1 && !acc.fired {
		if !purge {
			acc.fired = true
			if err := w.wins.Put(end, acc); err != nil {
				return err
			}
		}
		if err := w.emit(t.Key, end, acc.cells, w.out); err != nil {
			return err
		}
	}
	if purge {
		return w.dropWindow(t.Key, end)
	}
	w.timers.RegisterEventTime(end, end-1+w.lateness)
	return nil
}

func (w *window) dropWindow(key any, end int64) error {
	w.keyBytes -= keyBytes(key)
	return w.wins.Delete(end)
}

// Close releases the state. The runtime sends MaxWatermark before Close at
// the end of a bounded stream, so every window has fired by then.
func (w *window) Close(dataflow.Output) error {
	w.reset()
	w.publishStateSize()
	return nil
}

// mod is t mod m in [0, m).
func mod(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	return r
}
