package operator

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/state"
)

// Session windows (window: {session: {gap: d}}): per key, a record at t
// opens [t, t+gap), and sessions of a key that overlap or touch merge, as
// Flink's EventTimeSessionWindows do. A key's open sessions are one value
// in the keyed-state backend (namespace 0, state "sessions"), sorted by
// start, disjoint and not touching; each session has event-time timers in
// the namespace of its start, at end-1 to fire it and at
// end-1+allowed_lateness to purge it. A merge deletes the timers of the
// sessions it replaces and registers the merged session's.

const (
	kindSession     = 2
	sessionsState   = "sessions"
	sessionsVersion = 1
)

// sessAcc is one session of a key: [start, end), whether it fired since its
// last update, and its aggregate cells.
type sessAcc struct {
	start, end int64
	fired      bool
	cells      []cell
}

// processSession folds the current record (its aggregate arguments in
// w.vals) into the session of its key it belongs to, merging the sessions
// it bridges.
func (w *window) processSession(key any, r *dataflow.Record, out dataflow.Output) error {
	defer clear(w.vals)
	t := r.Time
	wm := w.wm
	if r.SourceWatermark != 0 && r.SourceWatermark > wm {
		wm = r.SourceWatermark
	}
	list, _, err := w.sess.Get(0)
	if err != nil {
		return err
	}
	start, end := t, t+w.gap
	lo, hi := len(list), len(list) // the sessions merged: list[lo:hi]
	for i := range list {
		s := &list[i]
		if s.start <= end && t <= s.end {
			if lo == len(list) {
				lo = i
			}
			hi = i + 1
			start, end = min(start, s.start), max(end, s.end)
		} else if s.start > end && lo == len(list) {
			lo, hi = i, i // where a new session goes
			break
		}
	}
	if end-1+w.lateness <= wm {
		return w.late(r, out)
	}
	if w.hasMinMax {
		if err := w.checkSessionConflicts(list[lo:hi]); err != nil {
			return w.fail(r, err)
		}
	}
	var m sessAcc
	if lo == hi {
		m = sessAcc{cells: w.newCells()}
		w.sessionOpened(key, len(list) == 0)
	} else {
		m = list[lo]
		w.deleteSessionTimers(&list[lo])
		for j := lo + 1; j < hi; j++ {
			w.deleteSessionTimers(&list[j])
			for i := range m.cells {
				m.cells[i].merge(w.aggs[i].fn, &list[j].cells[i])
			}
			w.sessions--
		}
	}
	m.start, m.end = start, end
	w.foldCells(m.cells)
	m.fired = false
	if end-1 <= w.wm {
		// Within the allowed lateness: fire the updated session now.
		m.fired = true
	} else {
		w.timers.RegisterEventTime(start, end-1)
	}
	if w.lateness > 0 {
		w.timers.RegisterEventTime(start, end-1+w.lateness)
	}
	// In place: the backend holds the key's slice, and a snapshot's
	// capture clones it (sessSerializer.Clone).
	if lo == hi {
		list = slices.Insert(list, lo, m)
	} else {
		list[lo] = m
		list = slices.Delete(list, lo+1, hi)
	}
	if err := w.sess.Put(0, list); err != nil {
		return err
	}
	if m.fired {
		return w.emitWindow(key, start, end, m.cells, out)
	}
	return nil
}

// sessionOpened accounts for a new session of key k (its first when
// newKey).
func (w *window) sessionOpened(k any, newKey bool) {
	w.sessions++
	if newKey {
		w.keyBytes += keyBytes(k)
	}
	if w.newWindows++; w.newWindows >= stateSyncEvery {
		w.publishStateSize()
	}
}

// sessionBytes is one session on the heap besides its cells: the sessAcc
// in its key's slice (two slices of it while a merge copies).
const sessionBytes = 48

// sessionStateBytes estimates the state of a session window: per key the
// backend's entry and a slice header, per session its sessAcc and cells.
func (w *window) sessionStateBytes(st state.Stats) int64 {
	return st.Entries*(windowEntryBytes+24) + w.sessions*(sessionBytes+int64(len(w.aggs))*cellBytes) + w.keyBytes + st.Timers*timerBytes
}

func (w *window) deleteSessionTimers(s *sessAcc) {
	w.timers.DeleteEventTime(s.start, s.end-1)
	if w.lateness > 0 {
		w.timers.DeleteEventTime(s.start, s.end-1+w.lateness)
	}
}

// checkSessionConflicts refuses a record whose min/max value, or a merge
// of the sessions it bridges, would compare a string with a number, before
// any session changes.
func (w *window) checkSessionConflicts(merged []sessAcc) error {
	for i := range w.aggs {
		fn := w.aggs[i].fn
		if !fn.compares() {
			continue
		}
		c := cell{v: w.vals[i]}
		for j := range merged {
			o := merged[j].cells[i].v
			if c.conflicts(o) {
				return fmt.Errorf("window aggregate %q: %s cannot compare %s with %s", w.aggs[i].name, fn, typeName(c.v), typeName(o))
			}
			if c.v == nil {
				c.v = o
			}
		}
	}
	return nil
}

// foldCells folds the current record into cells.
func (w *window) foldCells(cells []cell) {
	for i := range cells {
		fn := w.aggs[i].fn
		if !fn.isArg() {
			cells[i].add(fn, w.vals[i], w.curTime)
		} else if cells[i].addArg(fn, w.vals[i], w.curTime) {
			cells[i].rec = w.curFields.Map()
		}
	}
}

// onSessionTimer fires or purges the session of the timer's key that
// starts at the timer's namespace.
func (w *window) onSessionTimer(t state.Timer) error {
	list, _, err := w.sess.Get(0)
	if err != nil {
		return err
	}
	i := -1
	for j := range list {
		if list[j].start == t.Namespace {
			i = j
			break
		}
	}
	if i < 0 || t.Time < list[i].end-1 {
		return nil // a timer of a session merged since (restored from an older state)
	}
	s := &list[i]
	purge := t.Time >= s.end-1+w.lateness
	if t.Time == s.end-1 && !s.fired {
		s.fired = true
		if err := w.emitWindow(t.Key, s.start, s.end, s.cells, w.out); err != nil {
			return err
		}
	}
	if !purge {
		w.timers.RegisterEventTime(s.start, s.end-1+w.lateness)
		return w.sess.Put(0, list)
	}
	w.sessions--
	if len(list) == 1 {
		w.keyBytes -= keyBytes(t.Key)
		return w.sess.Delete(0)
	}
	return w.sess.Put(0, append(list[:i:i], list[i+1:]...))
}

// checkSessions checks the sessions restored (in order, disjoint, not
// touching, at least a gap long, within the range of event times) and
// counts the keys' bytes for the size estimate.
func (w *window) checkSessions() error {
	var err error
	w.keyBytes, w.sessions = 0, 0
	w.sess.Range(func(key any, ns int64, list []sessAcc) bool {
		if ns != 0 || len(list) == 0 {
			err = fmt.Errorf("key %v: bad sessions entry (namespace %d, %d sessions)", key, ns, len(list))
			return false
		}
		for i, s := range list {
			if s.start <= -maxEventTime || s.end >= maxEventTime+w.gap || s.end-s.start < w.gap || i > 0 && list[i-1].end >= s.start {
				err = fmt.Errorf("key %v: session [%d, %d) does not fit a gap of %d ms", key, s.start, s.end, w.gap)
				return false
			}
		}
		w.keyBytes += keyBytes(key)
		w.sessions += int64(len(list))
		return true
	})
	return err
}

// merge folds another cell of the same aggregate into c. Two sessions of
// a key never hold records of the same event time, so the ties that add
// breaks by arrival order cannot arise between them.
func (c *cell) merge(fn aggFn, o *cell) {
	switch fn {
	case aggCount:
		c.n += o.n
	case aggSum, aggAvg:
		if o.n == 0 {
			return
		}
		switch {
		case c.flt || o.flt:
			c.f = c.float() + o.float()
			c.flt, c.i = true, 0
		default:
			s := c.i + o.i
			if (s > c.i) == (o.i > 0) || o.i == 0 {
				c.i = s
			} else {
				c.flt, c.f, c.i = true, float64(c.i)+float64(o.i), 0
			}
		}
		c.n += o.n
	case aggMin, aggMax:
		if o.n == 0 {
			return
		}
		if c.n == 0 {
			c.v = o.v
		} else if d := state.CompareKeys(o.v, c.v); fn == aggMin && d < 0 || fn == aggMax && d > 0 {
			c.v = o.v
		}
		c.n += o.n
	case aggCountDistinct:
		if len(o.set) == 0 {
			return
		}
		if c.set == nil {
			c.set = make(map[any]struct{}, len(o.set))
		}
		maps.Copy(c.set, o.set)
		c.n = int64(len(c.set))
	case aggFirst, aggLast:
		if o.n == 0 {
			return
		}
		if c.n == 0 ||
			fn == aggFirst && (o.i < c.i || o.i == c.i && state.CompareKeys(o.v, c.v) < 0) ||
			fn == aggLast && (o.i > c.i || o.i == c.i && state.CompareKeys(o.v, c.v) > 0) {
			c.v, c.i = o.v, o.i
		}
		c.n += o.n
	case aggArgMax, aggArgMin:
		if o.n == 0 {
			return
		}
		take := c.n == 0
		if !take {
			d := state.CompareKeys(o.v, c.v)
			if fn == aggArgMin {
				d = -d
			}
			take = d > 0 || d == 0 && o.i < c.i
		}
		if take {
			c.v, c.i, c.rec = o.v, o.i, o.rec
		}
		c.n += o.n
	}
}

func (c *cell) float() float64 {
	if c.flt {
		return c.f
	}
	return float64(c.i)
}

// sessSerializer encodes a key's sessions for the backend: a version byte,
// the number of sessions, then per session its start and end (varints),
// the fired byte and one cell per aggregate (appendCell).
type sessSerializer struct{ fns []aggFn }

func (s sessSerializer) Append(buf []byte, list []sessAcc) ([]byte, error) {
	buf = append(buf, sessionsVersion)
	buf = binary.AppendUvarint(buf, uint64(len(list)))
	for _, a := range list {
		buf = binary.AppendVarint(buf, a.start)
		buf = binary.AppendVarint(buf, a.end)
		if a.fired {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
		for k := range a.cells {
			var err error
			if buf, err = appendCell(buf, s.fns[k], &a.cells[k]); err != nil {
				return nil, fmt.Errorf("%s: %w", s.fns[k], err)
			}
		}
	}
	return buf, nil
}

func (s sessSerializer) Decode(b []byte) ([]sessAcc, error) {
	d := state.NewReader(b)
	if v := d.Byte(); d.Err() == nil && v != sessionsVersion {
		return nil, fmt.Errorf("session state version %d, this weir reads %d", v, sessionsVersion)
	}
	n := d.Count(3)
	if d.Err() != nil {
		return nil, d.Err()
	}
	list := make([]sessAcc, n)
	acc := accSerializer{s.fns}
	for i := range list {
		list[i].start, list[i].end = d.Varint(), d.Varint()
		a, err := acc.decode(d)
		if err != nil {
			return nil, fmt.Errorf("session %d: %w", i+1, err)
		}
		list[i].fired, list[i].cells = a.fired, a.cells
	}
	if d.Err() != nil {
		return nil, d.Err()
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the sessions", d.Len())
	}
	return list, nil
}

// Clone implements state.Cloner: the operator updates cells in place.
func (s sessSerializer) Clone(list []sessAcc) []sessAcc {
	list = append([]sessAcc(nil), list...)
	for i := range list {
		list[i].cells = accSerializer{}.Clone(winAcc{cells: list[i].cells}).cells
	}
	return list
}
