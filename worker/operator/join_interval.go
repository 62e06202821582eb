package operator

import (
	"fmt"
	"slices"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// intervalJoin joins a left record l with every right record r of its key
// with l.ts - lower <= r.ts <= l.ts + upper, whichever arrives first.
//
// Each side's records wait in a map state (event time -> records) as long
// as a record of the other side can still match them: a left record until
// the watermark reaches l.ts + upper, a right one until it reaches
// r.ts + lower. An event-time timer per (key, time) drops them then, and
// for a left join emits the left records nothing matched. A record at or
// behind the watermark (the larger of the join's and its source
// partition's) is late and dropped: every record it could match has gone.
// So which pairs are emitted depends only on the records, not on how the
// two inputs interleave or on a restore in between.
type intervalJoin struct {
	*joinCore
	lower, upper int64
	sides        [2]*state.Map[int64, []joinEntry]
	times        []int64
}

func newIntervalJoin(j *joinCore, iv *spec.JoinInterval) (*intervalJoin, error) {
	op := &intervalJoin{joinCore: j, lower: iv.Lower.D().Milliseconds(), upper: iv.Upper.D().Milliseconds()}
	if op.lower+op.upper < 0 {
		return nil, fmt.Errorf("node %s: join interval [-%d ms, +%d ms] is empty", j.node, op.lower, op.upper)
	}
	for s, name := range []string{"left", "right"} {
		m, err := state.NewMap(j.backend, state.Descriptor{Name: "interval-" + name}, state.DefaultSerializer[int64](), state.Serializer[[]joinEntry](joinEntriesSer{}))
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", j.node, err)
		}
		op.sides[s] = m
	}
	if j.outer {
		j.outerHoldMs = max(op.upper, 0)
	}
	return op, nil
}

// ProcessInput implements dataflow.InputProcessor.
func (op *intervalJoin) ProcessInput(input int, r *dataflow.Record, out dataflow.Output) error {
	if input != joinLeft && input != joinRight {
		return fmt.Errorf("node %s: join has no input %d", op.node, input)
	}
	key, err := op.key(r)
	if err != nil {
		return op.fail(r, err)
	}
	if r.Time <= op.lateWM(r) {
		op.dropLate()
		return nil
	}
	op.backend.SetCurrentKey(key)
	// The other side's times that match r.
	other := op.sides[1-input]
	lo, hi := satAdd(r.Time, -op.lower), satAdd(r.Time, op.upper) // r is left: right times
	if input == joinRight {
		lo, hi = satAdd(r.Time, -op.upper), satAdd(r.Time, op.lower) // r is right: left times
	}
	op.times = op.times[:0]
	if err := other.Range(0, func(ts int64, _ []joinEntry) bool {
		if ts >= lo && ts <= hi {
			op.times = append(op.times, ts)
		}
		return true
	}); err != nil {
		return err
	}
	slices.Sort(op.times) // a deterministic output order
	matched := false
	for _, ts := range op.times {
		es, _, err := other.Get(0, ts)
		if err != nil {
			return err
		}
		for i := range es {
			matched = true
			l, rr := r, &es[i].rec
			if input == joinRight {
				l, rr = &es[i].rec, r
				es[i].matched = true
			}
			if err := op.emit(key, l, rr, max(l.Time, rr.Time), out); err != nil {
				return err
			}
		}
		if input == joinRight {
			if err := other.Put(0, ts, es); err != nil {
				return err
			}
		}
	}
	// Keep r while the other side can still match it.
	own := op.sides[input]
	es, _, err := own.Get(0, r.Time)
	if err != nil {
		return err
	}
	kept := dataflow.Record{Time: r.Time, Fields: r.Fields, Origin: r.Origin}
	es = append(es, joinEntry{rec: kept, matched: matched})
	if err := own.Put(0, r.Time, es); err != nil {
		return err
	}
	op.backend.Timers().RegisterEventTime(r.Time, op.until(input, r.Time))
	op.recordDone()
	return nil
}

// until is when the records of input at ts can no longer match.
func (op *intervalJoin) until(input int, ts int64) int64 {
	if input == joinLeft {
		return satAdd(ts, op.upper)
	}
	return satAdd(ts, op.lower)
}

// ProcessWatermark implements dataflow.WatermarkHandler.
func (op *intervalJoin) ProcessWatermark(wm int64, out dataflow.Output) error {
	return op.advance(wm, out, func(t state.Timer) error { return op.expire(t, out) })
}

// expire drops the records at t.Namespace (their event time) whose time
// t.Time is, emitting a left join's unmatched left records.
func (op *intervalJoin) expire(t state.Timer, out dataflow.Output) error {
	ts := t.Namespace
	if t.Time == op.until(joinLeft, ts) {
		left := op.sides[joinLeft]
		if op.outer {
			es, _, err := left.Get(0, ts)
			if err != nil {
				return err
			}
			for i := range es {
				if !es[i].matched {
					if err := op.emit(t.Key, &es[i].rec, nil, es[i].rec.Time, out); err != nil {
						return err
					}
				}
			}
		}
		if err := left.Delete(0, ts); err != nil {
			return err
		}
	}
	if t.Time == op.until(joinRight, ts) {
		if err := op.sides[joinRight].Delete(0, ts); err != nil {
			return err
		}
	}
	return nil
}
