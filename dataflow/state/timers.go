package state

import (
	"cmp"
	"math"
)

// Timer is one registered timer: a key, a namespace and a time (event time
// or processing time, epoch milliseconds).
type Timer struct {
	Key       any
	Namespace int64
	Time      int64
}

func compareTimers(a, b Timer) int {
	if c := cmp.Compare(a.Time, b.Time); c != 0 {
		return c
	}
	if c := CompareKeys(a.Key, b.Key); c != 0 {
		return c
	}
	return cmp.Compare(a.Namespace, b.Namespace)
}

// Timers is a backend's timer service: event-time and processing-time
// timers, at most one per (key, namespace, time) of each domain. Due
// timers fire in order of time, then key (CompareKeys), then namespace,
// with their key current, so the order is the same in every run and
// after every restore. They are in the backend's snapshots, grouped by
// key group with the state.
type Timers struct {
	h      *Heap
	event  timerQueue
	proc   timerQueue
	wm     int64
	firing bool
}

func newTimers(h *Heap) *Timers {
	return &Timers{h: h, event: newTimerQueue(), proc: newTimerQueue(), wm: math.MinInt64}
}

// RegisterEventTime registers an event-time timer for the current key; one
// already registered at the same namespace and time is kept. A timer at or
// before the current watermark fires at the next advance.
func (t *Timers) RegisterEventTime(ns, ts int64) {
	t.event.add(Timer{t.h.cur, ns, ts})
}

// DeleteEventTime deletes the current key's event-time timer, if any.
func (t *Timers) DeleteEventTime(ns, ts int64) {
	t.event.remove(Timer{t.h.cur, ns, ts})
}

// RegisterProcessingTime registers a processing-time timer for the current
// key.
func (t *Timers) RegisterProcessingTime(ns, ts int64) {
	t.proc.add(Timer{t.h.cur, ns, ts})
}

// DeleteProcessingTime deletes the current key's processing-time timer.
func (t *Timers) DeleteProcessingTime(ns, ts int64) {
	t.proc.remove(Timer{t.h.cur, ns, ts})
}

// Watermark is the highest watermark AdvanceWatermark was called with
// (math.MinInt64 before the first).
func (t *Timers) Watermark() int64 { return t.wm }

// Len is the number of registered timers of both domains.
func (t *Timers) Len() int { return len(t.event.set) + len(t.proc.set) }

// NextProcessingTime returns the time of the earliest processing-time
// timer.
func (t *Timers) NextProcessingTime() (int64, bool) {
	t.proc.prune()
	if len(t.proc.heap) == 0 {
		return 0, false
	}
	return t.proc.heap[0].Time, true
}

// AdvanceWatermark fires, through fire, every event-time timer at or
// before wm, including those that firing registers, with the timer's key
// current. A watermark that does not advance fires nothing. An error from
// fire stops the advance and is returned (the timer is gone).
func (t *Timers) AdvanceWatermark(wm int64, fire func(Timer) error) error {
	if wm <= t.wm {
		return nil
	}
	t.wm = wm
	return t.advance(&t.event, wm, fire)
}

// AdvanceProcessingTime fires every processing-time timer at or before
// now, likewise.
func (t *Timers) AdvanceProcessingTime(now int64, fire func(Timer) error) error {
	return t.advance(&t.proc, now, fire)
}

func (t *Timers) advance(q *timerQueue, upTo int64, fire func(Timer) error) error {
	for {
		tm, ok := q.popDue(upTo)
		if !ok {
			return nil
		}
		t.h.cur = tm.Key
		if err := fire(tm); err != nil {
			return err
		}
	}
}

func (t *Timers) reset() {
	t.event, t.proc = newTimerQueue(), newTimerQueue()
	t.wm = math.MinInt64
}

// timerQueue is a set of timers and a binary heap over it; a deleted timer
// stays in the heap until it reaches the top (or a compaction).
type timerQueue struct {
	set  map[Timer]struct{}
	heap []Timer
}

func newTimerQueue() timerQueue { return timerQueue{set: map[Timer]struct{}{}} }

func (q *timerQueue) add(tm Timer) {
	if _, ok := q.set[tm]; ok {
		return
	}
	q.set[tm] = struct{}{}
	q.heap = append(q.heap, tm)
	q.up(len(q.heap) - 1)
}

func (q *timerQueue) remove(tm Timer) {
	if _, ok := q.set[tm]; !ok {
		return
	}
	delete(q.set, tm)
	if len(q.heap) > 2*len(q.set)+64 {
		q.rebuild()
	}
}

// rebuild drops deleted timers from the heap.
func (q *timerQueue) rebuild() {
	h := q.heap[:0]
	seen := make(map[Timer]struct{}, len(q.set))
	for _, tm := range q.heap {
		if _, ok := q.set[tm]; !ok {
			continue
		}
		if _, dup := seen[tm]; dup {
			continue
		}
		seen[tm] = struct{}{}
		h = append(h, tm)
	}
	clear(q.heap[len(h):])
	q.heap = h
	for i := len(h)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

// prune pops deleted timers off the top.
func (q *timerQueue) prune() {
	for len(q.heap) > 0 {
		if _, ok := q.set[q.heap[0]]; ok {
			return
		}
		q.pop()
	}
}

func (q *timerQueue) popDue(upTo int64) (Timer, bool) {
	for len(q.heap) > 0 && q.heap[0].Time <= upTo {
		tm := q.pop()
		if _, ok := q.set[tm]; ok {
			delete(q.set, tm)
			return tm, true
		}
	}
	return Timer{}, false
}

func (q *timerQueue) pop() Timer {
	h := q.heap
	tm := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = Timer{}
	q.heap = h[:n]
	if n > 0 {
		q.down(0)
	}
	return tm
}

func (q *timerQueue) up(i int) {
	h := q.heap
	for i > 0 {
		p := (i - 1) / 2
		if compareTimers(h[i], h[p]) >= 0 {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *timerQueue) down(i int) {
	h := q.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && compareTimers(h[r], h[l]) < 0 {
			m = r
		}
		if compareTimers(h[m], h[i]) >= 0 {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
