package state

import (
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/weir-stream/weir/dataflow"
)

// Kind is what a declared state holds.
type Kind uint8

// State kinds. A reducing or aggregating state is a value that the operator
// folds into; its kind is kept apart so that a restore into a plain value
// of the same name is refused.
const (
	KindValue Kind = iota + 1
	KindMap
	KindList
	KindReducing
	KindAggregating
)

// String names the kind as errors show it.
func (k Kind) String() string {
	switch k {
	case KindValue:
		return "value"
	case KindMap:
		return "map"
	case KindList:
		return "list"
	case KindReducing:
		return "reducing"
	case KindAggregating:
		return "aggregating"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// TTLUpdate says which accesses extend an entry's time to live.
type TTLUpdate uint8

const (
	// OnCreateAndWrite extends it when the entry is written (the default).
	OnCreateAndWrite TTLUpdate = iota
	// OnReadAndWrite extends it on reads too.
	OnReadAndWrite
)

// TTL is a state's time to live, in processing time. An expired entry is
// never returned; it is dropped by Cleanup, by the access that finds it,
// and from snapshots.
type TTL struct {
	// Duration is the time to live; 0 disables expiry.
	Duration time.Duration
	Update   TTLUpdate
}

// Descriptor declares a state: its name, unique in its operator, which is
// how a restore finds it again; its kind; and its time to live.
type Descriptor struct {
	Name string
	Kind Kind
	TTL  TTL
}

// Config configures a backend.
type Config struct {
	// MaxParallelism is the job's number of key groups (default
	// dataflow.DefaultMaxParallelism).
	MaxParallelism int
	// KeyGroups are the key groups the subtask owns (default all). A
	// restore keeps only the state of these.
	KeyGroups *dataflow.KeyGroupRange
	// Now is the processing time in epoch milliseconds, for TTL (default
	// the wall clock). Tests inject a fake one.
	Now func() int64
}

// Backend is the keyed state of one operator instance. Backends are
// implemented in this package (the heap backend; a disk backend later);
// operators see only this interface and the typed states made with
// NewValue, NewMap and NewList, so swapping the backend changes no
// operator code.
type Backend interface {
	// SetCurrentKey scopes state access and timer registration to key,
	// which must be normalized (NormalizeKey).
	SetCurrentKey(key any)
	// CurrentKey is the key set last.
	CurrentKey() any
	// Timers is the backend's timer service.
	Timers() *Timers
	// Snapshot encodes every state and timer (see snapshot.go). The
	// result shares nothing with the backend.
	Snapshot() ([]byte, error)
	// CaptureSnapshot is Snapshot in two phases: a cheap capture now,
	// and an encode that may run on another goroutine while the backend
	// is used, and returns what Snapshot would have at the capture.
	CaptureSnapshot() (encode func() ([]byte, SnapshotInfo, error), err error)
	// Restore replaces the backend's contents with the key groups it owns
	// from the snapshots of one or several subtasks. States are decoded
	// when declared (now, for those declared already).
	Restore(snapshots [][]byte) error
	// Cleanup drops up to n expired entries.
	Cleanup(n int)
	// Stats describes the backend's size.
	Stats() Stats
	// Now is the backend's processing time in epoch milliseconds.
	Now() int64

	heap() *Heap
}

// Stats is a backend's size, for metrics.
type Stats struct {
	// Entries is the number of values, lists and map entries, summed
	// over states.
	Entries int64
	// Timers is the number of registered timers.
	Timers int64
	// Bytes estimates the state's size in memory: per entry, its encoded
	// size in the last snapshot (64 bytes before the first) and the
	// entry's own overhead (a map slot, the entry and its pointer).
	Bytes int64
}

// Heap is the default backend: state as Go values in maps, encoded only
// by Snapshot.
type Heap struct {
	cfg     Config
	kgs     dataflow.KeyGroupRange
	cur     any
	cid     int32 // cur's id in keys, noKey when it has no state
	keys    keyIndex
	tables  []table
	byName  map[string]table
	pending map[string]*pendingState
	timers  *Timers
	anyTTL  bool // a table has a TTL: Cleanup has work (and reads the clock)
}

// NewHeap returns an empty heap backend.
func NewHeap(cfg Config) *Heap {
	if cfg.MaxParallelism <= 0 {
		cfg.MaxParallelism = dataflow.DefaultMaxParallelism
	}
	if cfg.Now == nil {
		cfg.Now = func() int64 { return time.Now().UnixMilli() }
	}
	h := &Heap{cfg: cfg, byName: map[string]table{}}
	h.kgs = dataflow.KeyGroupRange{Start: 0, End: cfg.MaxParallelism - 1}
	if cfg.KeyGroups != nil {
		h.kgs = *cfg.KeyGroups
	}
	h.keys.init()
	h.cid = noKey
	h.timers = newTimers(h)
	return h
}

func (h *Heap) heap() *Heap { return h }

// SetCurrentKey implements Backend.
func (h *Heap) SetCurrentKey(key any) {
	if h.cid != noKey && key == h.cur {
		return
	}
	h.cur = key
	h.cid = h.keys.lookup(key)
}

// setCurrent makes the key with id current (a timer's).
func (h *Heap) setCurrent(id int32) {
	h.cur = h.keys.key(id)
	h.cid = id
}

// CurrentKey implements Backend.
func (h *Heap) CurrentKey() any { return h.cur }

// Timers implements Backend.
func (h *Heap) Timers() *Timers { return h.timers }

// Now implements Backend.
func (h *Heap) Now() int64 { return h.cfg.Now() }

// Cleanup implements Backend.
func (h *Heap) Cleanup(n int) {
	if n <= 0 || !h.anyTTL {
		return
	}
	now := h.cfg.Now()
	for _, t := range h.tables {
		if n <= 0 {
			return
		}
		n -= t.cleanup(now, n)
	}
}

// Stats implements Backend.
func (h *Heap) Stats() Stats {
	var s Stats
	for _, t := range h.tables {
		n := int64(t.len())
		s.Entries += n
		s.Bytes += n * (t.bytesPerEntry() + entryOverhead)
	}
	s.Timers = int64(h.timers.Len())
	return s
}

// ErrDeclared is wrapped by the error declaring a state name twice.
var ErrDeclared = errors.New("state already declared")

// register adds t under d.Name and loads what a restore left for it.
func (h *Heap) register(d Descriptor, t table) error {
	if d.Name == "" {
		return errors.New("state name is empty")
	}
	if d.TTL.Duration < 0 {
		return fmt.Errorf("state %q: negative TTL %s", d.Name, d.TTL.Duration)
	}
	if _, dup := h.byName[d.Name]; dup {
		return fmt.Errorf("state %q: %w", d.Name, ErrDeclared)
	}
	if p, ok := h.pending[d.Name]; ok {
		if p.kind != d.Kind {
			return fmt.Errorf("state %q is a %s state in the snapshot and a %s state in the operator; a state's kind cannot change", d.Name, p.kind, d.Kind)
		}
		if err := t.load(p.recs, h.cfg.Now()); err != nil {
			t.clearAll()
			return fmt.Errorf("state %q: restore: %w", d.Name, err)
		}
		delete(h.pending, d.Name)
		h.cid = h.keys.lookup(h.cur)
	}
	h.tables = append(h.tables, t)
	h.byName[d.Name] = t
	h.anyTTL = h.anyTTL || d.TTL.Duration > 0
	return nil
}

// entryOverhead is what a heap entry costs besides its value: a map slot
// with an interface key, the entry struct and its pointer.
const entryOverhead = 80

// ttlMillis is the TTL in whole milliseconds, at least 1 when set.
func ttlMillis(t TTL) int64 {
	if t.Duration <= 0 {
		return 0
	}
	return max(t.Duration.Milliseconds(), 1)
}

// expiry is the time an entry written (or read, per update) at now
// expires: never (0) without a TTL.
func expiry(ttl int64, now int64) int64 {
	if ttl <= 0 {
		return 0
	}
	return now + ttl
}

func expired(exp, now int64) bool { return exp != 0 && exp <= now }

// table is one declared state of the heap backend.
type table interface {
	desc() Descriptor
	len() int
	bytesPerEntry() int64
	// capture copies the live entries at now; later returns one record
	// per (key, namespace) with the encoded payload, and may run on
	// another goroutine while the table changes.
	capture(now int64) (later func() ([]snapRec, error), err error)
	// setEncodedSize tells the table the size of its last snapshot and
	// how many entries it had; it may be called from any goroutine.
	setEncodedSize(bytes, entries int64)
	// load adds restored records.
	load(recs []rawRec, now int64) error
	cleanup(now int64, n int) int
	clearAll()
}

// ttlQueue finds expired entries without scanning: every entry is queued
// once when created; an entry whose expiry moved on is queued again when
// it reaches the head. Expiries only grow, so the queue stays close to
// sorted and its head is the next to expire.
type ttlQueue[E any] struct {
	items []E
	head  int
}

func (q *ttlQueue[E]) push(e E) { q.items = append(q.items, e) }

func (q *ttlQueue[E]) peek() (E, bool) {
	var zero E
	if q.head >= len(q.items) {
		return zero, false
	}
	return q.items[q.head], true
}

func (q *ttlQueue[E]) pop() {
	var zero E
	q.items[q.head] = zero
	q.head++
	if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
}

func (q *ttlQueue[E]) reset() { q.items, q.head = nil, 0 }

// expire takes up to n entries due at now off the head of q: an entry
// already removed is dropped, an expired one removed, and one whose expiry
// moved on (it was written or read since it was queued) queued again. It
// returns how many it took, the cleanup budget spent.
func expire[E any](q *ttlQueue[queued[E]], now int64, n int, state func(E) (dead bool, exp int64), remove func(E)) int {
	done := 0
	for done < n {
		it, ok := q.peek()
		if !ok || it.exp > now {
			break
		}
		q.pop()
		done++
		switch dead, exp := state(it.e); {
		case dead:
		case expired(exp, now):
			remove(it.e)
		default:
			q.push(queued[E]{it.e, exp})
		}
	}
	return done
}

// sizeEstimate keeps the average encoded size of a table's entries,
// set by a snapshot's encoding, which may run on another goroutine.
type sizeEstimate struct{ perEntry atomic.Int64 }

func (s *sizeEstimate) bytesPerEntry() int64 {
	if n := s.perEntry.Load(); n != 0 {
		return n
	}
	return 64
}

func (s *sizeEstimate) setEncodedSize(bytes, entries int64) {
	s.perEntry.Store(bytes / max(entries, 1))
}

// shareable says whether values of t can be copied at a capture and
// encoded later while the operator goes on: they hold no memory that can
// change in place (strings are immutable; slices, maps, pointers and
// interfaces are not shareable).
func shareable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return shareable(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !shareable(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// copier says how a table copies values of T at a capture to encode them
// later: as they are (ok, clone nil) when they share no memory, with the
// serializer's Clone when it is a Cloner, or not at all (ok false: the
// table encodes at the capture).
func copier[T any](ser Serializer[T]) (clone func(T) T, ok bool) {
	if shareable(reflect.TypeFor[T]()) {
		return nil, true
	}
	if c, isCloner := ser.(Cloner[T]); isCloner {
		return c.Clone, true
	}
	return nil, false
}

// encodedNow returns a later function that returns recs (and err): for tables
// that encode at the capture.
func encodedNow(recs []snapRec, err error) (func() ([]snapRec, error), error) {
	if err != nil {
		return nil, err
	}
	return func() ([]snapRec, error) { return recs, nil }, nil
}
