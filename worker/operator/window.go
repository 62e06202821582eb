package operator

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
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

// winKey names one window of one key. Windows are identified by their end;
// the start is end-size.
type winKey struct {
	key any
	end int64
}

// bucket holds the keys that have state in the windows ending at end.
// fired says every one of them has fired.
type bucket struct {
	end   int64
	keys  []any
	fired bool
}

// window is a keyed event-time window operator (tumbling or sliding,
// aligned to the epoch) with Flink's EventTimeTrigger semantics: a window
// [start,end) fires once the watermark reaches end-1, and while the
// watermark is below end-1+allowed_lateness a late record updates the window
// and fires it again.
//
// State is one map from (key, end) to a slot in a slab of aggregate cells,
// and the ends with state in a slice sorted by end, each with its keys, so a
// watermark touches only the windows it fires or purges.
type window struct {
	base
	size, slide, lateness int64
	lateSide              bool
	keyField              string
	aggs                  []aggregate
	shape                 *dataflow.Shape // of results: key, window_start, window_end, aggregates
	hasExpr, hasMinMax    bool

	wm      int64
	index   map[winKey]int32
	cells   []cell // slot s owns cells[s*len(aggs) : (s+1)*len(aggs)]
	fired   []bool // fired[s]: slot s's window has fired (and is kept for lateness)
	free    []int32
	nslots  int32
	buckets []*bucket // sorted by end
	spare   []*bucket

	snapKeys int64 // distinct keys in the last snapshot

	// keyBytes, newWindows and stateGauge: the state size estimate
	// (window_state.go).
	keyBytes   int64
	newWindows int
	stateGauge *dataflow.StateSize

	vals []any           // the current record's aggregate arguments
	rec  dataflow.Record // the result being emitted
	sort []any           // scratch for firing keys in order
}

func newWindow(b base, w *spec.Window, keyField string) (*window, error) {
	op := &window{base: b, keyField: keyField, wm: math.MinInt64}
	switch {
	case w.Tumbling != 0 && w.Sliding != nil:
		return nil, errors.New("window: set tumbling or sliding, not both")
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
		return nil, errors.New("window: set tumbling or sliding")
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
		if f == aggMin || f == aggMax {
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
	op.reset()
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
	w.index = make(map[winKey]int32)
	w.cells = nil
	w.fired = nil
	w.free = nil
	w.nslots = 0
	w.buckets = nil
	w.spare = nil
	w.keyBytes = 0
}

// Process adds a record to its windows.
func (w *window) Process(r *dataflow.Record, out dataflow.Output) error {
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
	if w.hasExpr {
		if err := w.evalArgs(r); err != nil {
			return w.fail(r, err)
		}
	}
	first, last := w.starts(t)
	if w.hasMinMax {
		if err := w.checkConflicts(key, first, last); err != nil {
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
func (w *window) checkConflicts(key any, first, last int64) error {
	n := len(w.aggs)
	for start := first; start <= last; start += w.slide {
		slot, ok := w.index[winKey{key, start + w.size}]
		if !ok {
			continue
		}
		cells := w.cells[int(slot)*n : int(slot+1)*n]
		for i := range w.aggs {
			if fn := w.aggs[i].fn; (fn == aggMin || fn == aggMax) && cells[i].conflicts(w.vals[i]) {
				return fmt.Errorf("window aggregate %q: %s cannot compare %s with %s",
					w.aggs[i].name, fn, typeName(w.vals[i]), typeName(cells[i].v))
			}
		}
	}
	return nil
}

// add folds the current record into window (key, end) and fires it at once
// when the watermark has passed its end (a late record within the allowed
// lateness).
func (w *window) add(key any, end int64, out dataflow.Output) error {
	wk := winKey{key, end}
	slot, ok := w.index[wk]
	if !ok {
		slot = w.newSlot()
		w.index[wk] = slot
		w.windowOpened(key)
		b := w.bucketFor(end)
		b.keys = append(b.keys, key)
		if end-1 > w.wm {
			b.fired = false
		}
	}
	n := len(w.aggs)
	cells := w.cells[int(slot)*n : int(slot+1)*n]
	for i := range cells {
		cells[i].add(w.aggs[i].fn, w.vals[i])
	}
	if end-1 <= w.wm {
		// A late record within the allowed lateness fires its window again
		// (or for the first time when it is the window's first record).
		w.fired[slot] = true
		return w.emit(key, end, cells, out)
	}
	if w.fired[slot] {
		// Only after a restore that merged subtasks at different
		// watermarks: the update fires when the watermark gets here.
		w.fired[slot] = false
		w.bucketFor(end).fired = false
	}
	return nil
}

func (w *window) newSlot() int32 {
	if k := len(w.free); k > 0 {
		s := w.free[k-1]
		w.free = w.free[:k-1]
		return s
	}
	s := w.nslots
	w.nslots++
	w.cells = append(w.cells, make([]cell, len(w.aggs))...)
	w.fired = append(w.fired, false)
	return s
}

func (w *window) freeSlot(s int32) {
	n := len(w.aggs)
	clear(w.cells[int(s)*n : int(s+1)*n])
	w.fired[s] = false
	w.free = append(w.free, s)
}

// bucketFor returns the bucket of end, creating it in order.
func (w *window) bucketFor(end int64) *bucket {
	bs := w.buckets
	// New windows are usually the latest ones.
	if k := len(bs); k > 0 && bs[k-1].end == end {
		return bs[k-1]
	}
	i, found := slices.BinarySearchFunc(bs, end, func(b *bucket, end int64) int { return cmp.Compare(b.end, end) })
	if found {
		return bs[i]
	}
	var b *bucket
	if k := len(w.spare); k > 0 {
		b = w.spare[k-1]
		w.spare = w.spare[:k-1]
	} else {
		b = &bucket{}
	}
	b.end = end
	w.buckets = slices.Insert(bs, i, b)
	return b
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
	vals := make([]any, 3+len(w.aggs))
	vals[0], vals[1], vals[2] = key, end-w.size, end
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
	if wm <= w.wm {
		return nil
	}
	w.wm = wm
	n := len(w.aggs)
	for _, b := range w.buckets {
		if b.end-1 > wm {
			break
		}
		if b.fired {
			continue
		}
		b.fired = true
		w.sort = append(w.sort[:0], b.keys...)
		slices.SortFunc(w.sort, state.CompareKeys)
		for _, k := range w.sort {
			slot, ok := w.index[winKey{k, b.end}]
			if !ok || w.fired[slot] {
				continue
			}
			w.fired[slot] = true
			if err := w.emit(k, b.end, w.cells[int(slot)*n:int(slot+1)*n], out); err != nil {
				clear(w.sort)
				return err
			}
		}
		clear(w.sort)
	}
	w.purge()
	w.publishStateSize()
	return out.EmitWatermark(wm)
}

// purge drops the windows whose allowed lateness has passed.
func (w *window) purge() {
	k := 0
	for k < len(w.buckets) && w.buckets[k].end-1+w.lateness <= w.wm {
		b := w.buckets[k]
		for _, key := range b.keys {
			wk := winKey{key, b.end}
			if slot, ok := w.index[wk]; ok {
				delete(w.index, wk)
				w.freeSlot(slot)
				w.keyBytes -= keyBytes(key)
			}
		}
		clear(b.keys)
		b.keys = b.keys[:0]
		b.fired = false
		if cap(b.keys) > 1024 {
			b.keys = nil
		}
		w.spare = append(w.spare, b)
		k++
	}
	if k > 0 {
		m := copy(w.buckets, w.buckets[k:])
		clear(w.buckets[m:])
		w.buckets = w.buckets[:m]
	}
	if len(w.index) == 0 && w.nslots > 0 {
		// No window left: refill the slab from its start.
		w.cells = w.cells[:0]
		w.fired = w.fired[:0]
		w.free = w.free[:0]
		w.nslots = 0
	}
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
