package operator

import (
	"fmt"
	"slices"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/state"
)

// sessionJoin joins the left and right records of a key in one session
// window: each record opens [ts, ts + gap), and windows of a key that
// overlap, whichever side their records came from, merge into one (Flink's
// session-window join, a co-group over the union of both sides). A session
// [start, end) fires when the watermark reaches end - 1: every pair of a
// left and a right record in it, with event time end - 1, and with a left
// join each left record of a session without right records, the right
// fields null.
//
// The sessions of a key are a value state (their bounds); each session's
// records are in list states whose namespace is the session's start, moved
// to the new start when sessions merge, with one event-time timer per
// session at end - 1. A record at or behind the watermark (the larger of
// the join's and its source partition's) is late and dropped: stricter
// than a window's end - 1, because a record behind the watermark could
// belong to a session that fired already, and whether it had would depend
// on timing. So the sessions, and the pairs, depend only on the records.
type sessionJoin struct {
	*joinCore
	gap      int64
	sessions *state.Value[[]joinSession]
	sides    [2]*state.List[joinEntry]
}

// joinSession is one session window of a key, [Start, End).
type joinSession struct {
	Start int64 `json:"s"`
	End   int64 `json:"e"`
}

func newSessionJoin(j *joinCore, gapMs int64) (*sessionJoin, error) {
	if gapMs <= 0 {
		return nil, fmt.Errorf("node %s: join session gap %d ms: want > 0", j.node, gapMs)
	}
	op := &sessionJoin{joinCore: j, gap: gapMs}
	var err error
	if op.sessions, err = state.NewValue(j.backend, state.Descriptor{Name: "session-bounds"}, state.DefaultSerializer[[]joinSession]()); err != nil {
		return nil, fmt.Errorf("node %s: %w", j.node, err)
	}
	for s, name := range []string{"left", "right"} {
		l, err := state.NewList(j.backend, state.Descriptor{Name: "session-" + name}, state.Serializer[joinEntry](joinEntrySer{}))
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", j.node, err)
		}
		op.sides[s] = l
	}
	return op, nil
}

// ProcessInput implements dataflow.InputProcessor.
func (op *sessionJoin) ProcessInput(input int, r *dataflow.Record, out dataflow.Output) error {
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
	ss, _, err := op.sessions.Get(0)
	if err != nil {
		return err
	}
	// The sessions of a key are disjoint: those r's own window overlaps
	// merge with it.
	own := joinSession{Start: r.Time, End: satAdd(r.Time, op.gap)}
	merged := own
	var kept, absorbed []joinSession
	for _, s := range ss {
		if s.Start < own.End && own.Start < s.End {
			merged.Start, merged.End = min(merged.Start, s.Start), max(merged.End, s.End)
			absorbed = append(absorbed, s)
		} else {
			kept = append(kept, s)
		}
	}
	// Move the absorbed sessions' records and timers to the merged one.
	for _, s := range absorbed {
		op.backend.Timers().DeleteEventTime(s.Start, s.End-1)
		if s.Start == merged.Start {
			continue
		}
		for side := range op.sides {
			es, err := op.sides[side].Get(s.Start)
			if err != nil {
				return err
			}
			for _, e := range es {
				if err := op.sides[side].Add(merged.Start, e); err != nil {
					return err
				}
			}
			if err := op.sides[side].Delete(s.Start); err != nil {
				return err
			}
		}
	}
	kept = append(kept, merged)
	slices.SortFunc(kept, func(a, b joinSession) int { return compareInt64(a.Start, b.Start) })
	if err := op.sessions.Put(0, kept); err != nil {
		return err
	}
	if err := op.sides[input].Add(merged.Start, joinEntry{rec: dataflow.Record{Time: r.Time, Fields: r.Fields, Origin: r.Origin}}); err != nil {
		return err
	}
	op.backend.Timers().RegisterEventTime(merged.Start, merged.End-1)
	op.recordDone()
	return nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ProcessWatermark implements dataflow.WatermarkHandler.
func (op *sessionJoin) ProcessWatermark(wm int64, out dataflow.Output) error {
	return op.advance(wm, out, func(t state.Timer) error { return op.fire(t, out) })
}

// fire joins the session of key t.Key that starts at t.Namespace and drops
// it.
func (op *sessionJoin) fire(t state.Timer, out dataflow.Output) error {
	ss, _, err := op.sessions.Get(0)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ss, func(s joinSession) bool { return s.Start == t.Namespace && s.End-1 == t.Time })
	if i < 0 {
		return nil // merged away; its timer was deleted, this is a stale one
	}
	end := ss[i].End
	left, err := op.sides[joinLeft].Get(t.Namespace)
	if err != nil {
		return err
	}
	right, err := op.sides[joinRight].Get(t.Namespace)
	if err != nil {
		return err
	}
	op.win = &joinSession{Start: t.Namespace, End: end}
	defer func() { op.win = nil }()
	for li := range left {
		for ri := range right {
			if err := op.emit(t.Key, &left[li].rec, &right[ri].rec, end-1, out); err != nil {
				return err
			}
		}
		if len(right) == 0 && op.outer {
			if err := op.emit(t.Key, &left[li].rec, nil, end-1, out); err != nil {
				return err
			}
		}
	}
	for side := range op.sides {
		if err := op.sides[side].Delete(t.Namespace); err != nil {
			return err
		}
	}
	ss = slices.Delete(ss, i, i+1)
	if len(ss) == 0 {
		return op.sessions.Delete(0)
	}
	return op.sessions.Put(0, ss)
}
