package operator

import (
	"fmt"
	"math"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// windowJoin joins the left and right records of a key that fall into the
// same tumbling or sliding window, when the window fires (the watermark
// reaches end - 1): every pair, with event time end - 1; a left join also
// emits each left record of a window without right records, with the right
// fields null. Each side's records wait in a list state per window (the
// namespace is the window's end) with one event-time timer per key and
// window, which also drops them. A record is late for a window when
// end - 1 <= the larger of the join's watermark and its source
// partition's, as for the window node; a record late for every window it
// falls into is dropped and counted.
type windowJoin struct {
	*joinCore
	size, slide int64
	sides       [2]*state.List[joinEntry]
}

func newWindowJoin(j *joinCore, w *spec.JoinWindow) (*windowJoin, error) {
	op := &windowJoin{joinCore: j}
	switch {
	case w.Sliding != nil:
		op.size, op.slide = w.Sliding.Size.D().Milliseconds(), w.Sliding.Slide.D().Milliseconds()
	default:
		op.size = w.Tumbling.D().Milliseconds()
		op.slide = op.size
	}
	if op.size <= 0 || op.slide <= 0 || op.slide > op.size {
		return nil, fmt.Errorf("node %s: join window size %d ms, slide %d ms: want 0 < slide <= size", j.node, op.size, op.slide)
	}
	for s, name := range []string{"left", "right"} {
		l, err := state.NewList(j.backend, state.Descriptor{Name: "window-" + name}, state.Serializer[joinEntry](joinEntrySer{}))
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", j.node, err)
		}
		op.sides[s] = l
	}
	return op, nil
}

// ProcessInput implements dataflow.InputProcessor.
func (op *windowJoin) ProcessInput(input int, r *dataflow.Record, out dataflow.Output) error {
	if input != joinLeft && input != joinRight {
		return fmt.Errorf("node %s: join has no input %d", op.node, input)
	}
	key, err := op.key(r)
	if err != nil {
		return op.fail(r, err)
	}
	wm := op.lateWM(r)
	op.backend.SetCurrentKey(key)
	kept := joinEntry{rec: dataflow.Record{Time: r.Time, Fields: r.Fields, Origin: r.Origin}}
	onTime := false
	// Windows [start, start+size) with start a multiple of slide that
	// contain r.Time, newest first.
	bound := satAdd(r.Time, -op.size)
	for start := r.Time - joinMod(r.Time, op.slide); start > bound; start -= op.slide {
		end := satAdd(start, op.size)
		if end-1 > wm {
			onTime = true
			if err := op.sides[input].Add(end, kept); err != nil {
				return err
			}
			op.backend.Timers().RegisterEventTime(end, end-1)
		}
		if start < math.MinInt64+op.slide {
			break // the next start is out of range
		}
	}
	if !onTime {
		op.dropLate()
	}
	op.recordDone()
	return nil
}

// joinMod is t mod m in [0, m), also for negative t (its own copy:
// window.go is changing under another hand).
func joinMod(t, m int64) int64 {
	x := t % m
	if x < 0 {
		x += m
	}
	return x
}

// ProcessWatermark implements dataflow.WatermarkHandler.
func (op *windowJoin) ProcessWatermark(wm int64, out dataflow.Output) error {
	return op.advance(wm, out, func(t state.Timer) error { return op.fire(t, out) })
}

// fire joins window t.Namespace (its end) of key t.Key and drops it.
func (op *windowJoin) fire(t state.Timer, out dataflow.Output) error {
	end := t.Namespace
	left, err := op.sides[joinLeft].Get(end)
	if err != nil {
		return err
	}
	right, err := op.sides[joinRight].Get(end)
	if err != nil {
		return err
	}
	op.win = &joinSession{Start: end - op.size, End: end}
	defer func() { op.win = nil }()
	for i := range left {
		for k := range right {
			if err := op.emit(t.Key, &left[i].rec, &right[k].rec, end-1, out); err != nil {
				return err
			}
		}
		if len(right) == 0 && op.outer {
			if err := op.emit(t.Key, &left[i].rec, nil, end-1, out); err != nil {
				return err
			}
		}
	}
	if err := op.sides[joinLeft].Delete(end); err != nil {
		return err
	}
	return op.sides[joinRight].Delete(end)
}

// joinEntrySer encodes one entry as a list of one (joinEntriesSer).
type joinEntrySer struct{}

func (joinEntrySer) Append(buf []byte, e joinEntry) ([]byte, error) {
	return joinEntriesSer{}.Append(buf, []joinEntry{e})
}

func (joinEntrySer) Decode(b []byte) (joinEntry, error) {
	es, err := joinEntriesSer{}.Decode(b)
	if err != nil {
		return joinEntry{}, err
	}
	if len(es) != 1 {
		return joinEntry{}, fmt.Errorf("join state: %d entries where one was expected", len(es))
	}
	return es[0], nil
}
