package state

import (
	"cmp"
	"math"
	"slices"
	"strings"
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
	h     *Heap
	event timerQueue
	proc  timerQueue
	wm    int64
}

func newTimers(h *Heap) *Timers {
	return &Timers{h: h, event: newTimerQueue(h), proc: newTimerQueue(h), wm: math.MinInt64}
}

// RegisterEventTime registers an event-time timer for the current key; one
// already registered at the same namespace and time is kept. A timer at or
// before the current watermark fires at the next advance.
func (t *Timers) RegisterEventTime(ns, ts int64) {
	t.event.add(tkey{t.h.curID(), ns, ts})
}

// DeleteEventTime deletes the current key's event-time timer, if any.
func (t *Timers) DeleteEventTime(ns, ts int64) {
	if id := t.h.cid; id != noKey {
		t.event.remove(tkey{id, ns, ts})
	}
}

// RegisterProcessingTime registers a processing-time timer for the current
// key.
func (t *Timers) RegisterProcessingTime(ns, ts int64) {
	t.proc.add(tkey{t.h.curID(), ns, ts})
}

// DeleteProcessingTime deletes the current key's processing-time timer.
func (t *Timers) DeleteProcessingTime(ns, ts int64) {
	if id := t.h.cid; id != noKey {
		t.proc.remove(tkey{id, ns, ts})
	}
}

// Watermark is the highest watermark AdvanceWatermark was called with
// (math.MinInt64 before the first).
func (t *Timers) Watermark() int64 { return t.wm }

// Len is the number of registered timers of both domains.
func (t *Timers) Len() int { return len(t.event.set) + len(t.proc.set) }

// NextProcessingTime returns the time of the earliest processing-time
// timer.
func (t *Timers) NextProcessingTime() (int64, bool) {
	return t.proc.next()
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
		tk, ok := q.popDue(upTo)
		if !ok {
			return nil
		}
		t.h.setCurrent(tk.id)
		err := fire(Timer{Key: t.h.cur, Namespace: tk.ns, Time: tk.time})
		t.h.unref(tk.id) // the popped item's reference, kept while it fired
		if err != nil {
			return err
		}
	}
}

func (t *Timers) reset() {
	t.event, t.proc = newTimerQueue(t.h), newTimerQueue(t.h)
	t.wm = math.MinInt64
}

// tkey is a timer by key id.
type tkey struct {
	id   int32
	ns   int64
	time int64
}

// timerQueue is a set of timers, and a bucket of them per time with a
// min-heap of the bucket times. A bucket is sorted by (key, namespace)
// when it starts to fire, the way the window operator sorts a window
// end's keys: timers of one time are usually many (one per key and
// window), and one sort of them costs half the comparisons of popping
// them off a heap one by one. A deleted timer stays in its bucket until
// its turn (or a compaction). Every item in a bucket holds a reference on
// its key id, so that an id is not reused under an item that orders by
// its key.
type timerQueue struct {
	h       *Heap
	set     map[tkey]struct{}
	times   []int64 // min-heap of the times in buckets
	buckets map[int64]*tbucket
	last    *tbucket // the bucket added to last: registrations repeat a time
	items   int      // items in buckets, live or not
	spare   []titem  // a fired bucket's array, for the next bucket
}

type tbucket struct {
	time   int64
	items  []titem
	next   int  // items before next have fired (or were dropped)
	sorted bool // items[next:] are in firing order
}

// titem is a timer in a bucket, with its key at hand for ordering.
type titem struct {
	tkey
	key any
}

func newTimerQueue(h *Heap) timerQueue {
	return timerQueue{h: h, set: map[tkey]struct{}{}, buckets: map[int64]*tbucket{}}
}

// compareItems orders the items of one time: by key, then namespace.
func compareItems(a, b titem) int {
	if a.id != b.id {
		if sa, ok := a.key.(string); ok {
			if sb, ok := b.key.(string); ok {
				return strings.Compare(sa, sb) // CompareKeys's order, without its type switches
			}
		}
		return CompareKeys(a.key, b.key)
	}
	return cmp.Compare(a.ns, b.ns)
}

// timers lists the registered timers, in no particular order.
func (q *timerQueue) timers() []Timer {
	out := make([]Timer, 0, len(q.set))
	for tk := range q.set {
		out = append(out, Timer{Key: q.h.keys.key(tk.id), Namespace: tk.ns, Time: tk.time})
	}
	return out
}

func (q *timerQueue) add(tk tkey) {
	if _, ok := q.set[tk]; ok {
		return
	}
	q.set[tk] = struct{}{}
	q.h.ref(tk.id)
	b := q.last
	if b == nil || b.time != tk.time {
		if b = q.buckets[tk.time]; b == nil {
			b = &tbucket{time: tk.time, items: q.spare}
			q.spare = nil
			q.buckets[tk.time] = b
			q.pushTime(tk.time)
		}
		q.last = b
	}
	b.items = append(b.items, titem{tk, q.h.keys.key(tk.id)})
	b.sorted = false
	q.items++
}

func (q *timerQueue) remove(tk tkey) {
	if _, ok := q.set[tk]; !ok {
		return
	}
	delete(q.set, tk)
	if q.items > 2*len(q.set)+64 {
		q.compact()
	}
}

// compact drops deleted timers from the buckets.
func (q *timerQueue) compact() {
	seen := make(map[tkey]struct{}, len(q.set))
	q.items = 0
	for _, b := range q.buckets {
		kept := b.items[:0]
		for _, it := range b.items[b.next:] {
			_, live := q.set[it.tkey]
			if _, dup := seen[it.tkey]; !live || dup {
				q.h.unref(it.id)
				continue
			}
			seen[it.tkey] = struct{}{}
			kept = append(kept, it)
		}
		clear(b.items[len(kept):])
		b.items, b.next = kept, 0
		q.items += len(kept)
	}
	// Empty buckets go when their time comes up.
}

// head returns the earliest bucket, dropping exhausted ones.
func (q *timerQueue) head() *tbucket {
	for len(q.times) > 0 {
		b := q.buckets[q.times[0]]
		if b.next < len(b.items) {
			return b
		}
		q.popTime()
		delete(q.buckets, b.time)
		if q.last == b {
			q.last = nil
		}
		if cap(b.items) > cap(q.spare) {
			q.spare = b.items[:0] // cleared as it fired
		}
	}
	return nil
}

// next is the time of the earliest live timer.
func (q *timerQueue) next() (int64, bool) {
	for {
		b := q.head()
		if b == nil {
			return 0, false
		}
		for b.next < len(b.items) {
			if _, ok := q.set[b.items[b.next].tkey]; ok {
				return b.time, true
			}
			q.drop(b)
		}
	}
}

// drop discards the item at b's cursor, a deleted timer.
func (q *timerQueue) drop(b *tbucket) {
	q.h.unref(b.items[b.next].id)
	b.items[b.next] = titem{}
	b.next++
	q.items--
}

// popDue returns the next due timer; the caller drops its reference.
func (q *timerQueue) popDue(upTo int64) (tkey, bool) {
	for {
		b := q.head()
		if b == nil || b.time > upTo {
			return tkey{}, false
		}
		if !b.sorted {
			slices.SortFunc(b.items[b.next:], compareItems)
			b.sorted = true
		}
		for b.next < len(b.items) {
			tk := b.items[b.next].tkey
			if _, ok := q.set[tk]; ok {
				delete(q.set, tk)
				b.items[b.next] = titem{}
				b.next++
				q.items--
				return tk, true
			}
			q.drop(b)
		}
	}
}

func (q *timerQueue) pushTime(t int64) {
	q.times = append(q.times, t)
	h := q.times
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p] <= h[i] {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *timerQueue) popTime() {
	h := q.times
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	q.times = h
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r] < h[l] {
			m = r
		}
		if h[i] <= h[m] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
