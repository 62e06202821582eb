package state

import (
	"encoding/binary"
	"fmt"
)

// Value is a typed state holding one value per key and namespace: a
// plain value, or the accumulator of a reducing or aggregating state.
type Value[T any] struct {
	h *Heap
	t *valueTable[T]
}

// NewValue declares a value state (Kind KindValue, KindReducing or
// KindAggregating; 0 means KindValue) in b. ser encodes it for snapshots
// (DefaultSerializer when nil).
func NewValue[T any](b Backend, d Descriptor, ser Serializer[T]) (*Value[T], error) {
	if d.Kind == 0 {
		d.Kind = KindValue
	}
	switch d.Kind {
	case KindValue, KindReducing, KindAggregating:
	default:
		return nil, fmt.Errorf("state %q: NewValue makes value, reducing or aggregating states, not %s", d.Name, d.Kind)
	}
	if ser == nil {
		ser = DefaultSerializer[T]()
	}
	h := b.heap()
	t := &valueTable[T]{d: d, ttl: ttlMillis(d.TTL), ser: ser, h: h, m: map[skey]*valueEntry[T]{}}
	if err := h.register(d, t); err != nil {
		return nil, err
	}
	return &Value[T]{h: h, t: t}, nil
}

// Get returns the current key's value in namespace ns, and whether there
// is one (an expired one is not).
func (v *Value[T]) Get(ns int64) (T, bool, error) {
	t := v.t
	e := t.lookup(skey{v.h.cur, ns})
	if e == nil {
		var zero T
		return zero, false, nil
	}
	if t.ttl > 0 {
		now := v.h.cfg.Now()
		if expired(e.exp, now) {
			t.remove(e)
			var zero T
			return zero, false, nil
		}
		if t.d.TTL.Update == OnReadAndWrite {
			e.exp = now + t.ttl
		}
	}
	return e.v, true, nil
}

// Put sets the current key's value in namespace ns.
func (v *Value[T]) Put(ns int64, val T) error {
	t := v.t
	k := skey{v.h.cur, ns}
	e := t.lookup(k)
	if e == nil {
		e = t.newEntry()
		e.k = k
		t.m[k] = e
		t.last, t.lastK = e, k
		if t.ttl > 0 {
			e.exp = v.h.cfg.Now() + t.ttl
			t.q.push(queued[*valueEntry[T]]{e, e.exp})
		}
	} else if t.ttl > 0 {
		e.exp = v.h.cfg.Now() + t.ttl
	}
	e.v = val
	return nil
}

// Update reads, changes and writes the current key's value in namespace
// ns in one access: fn gets the value (the zero value and exists false
// when there is none, or it expired) and changes it in place; when fn
// returns store true the value is written as Put would. fn must not
// change the value when it returns false or an error. It is the cheap
// form of Get then Put for a hot path: the heap backend looks the entry
// up once and hands fn the stored value itself; a disk backend reads,
// calls fn and writes.
func (v *Value[T]) Update(ns int64, fn func(val *T, exists bool) (store bool, err error)) error {
	t := v.t
	k := skey{v.h.cur, ns}
	e := t.lookup(k)
	var now int64
	if t.ttl > 0 {
		now = v.h.cfg.Now()
		if e != nil && expired(e.exp, now) {
			t.remove(e)
			e = nil
		}
	}
	if e == nil {
		var val T
		store, err := fn(&val, false)
		if err != nil || !store {
			return err
		}
		e = t.newEntry()
		e.k, e.v = k, val
		t.m[k] = e
		t.last, t.lastK = e, k
		if t.ttl > 0 {
			e.exp = now + t.ttl
			t.q.push(queued[*valueEntry[T]]{e, e.exp})
		}
		return nil
	}
	store, err := fn(&e.v, true)
	if err != nil {
		return err
	}
	if t.ttl > 0 && (store || t.d.TTL.Update == OnReadAndWrite) {
		e.exp = now + t.ttl
	}
	return nil
}

// Delete removes the current key's value in namespace ns.
func (v *Value[T]) Delete(ns int64) error {
	if e := v.t.lookup(skey{v.h.cur, ns}); e != nil {
		v.t.remove(e)
	}
	return nil
}

type valueEntry[T any] struct {
	k    skey
	v    T
	exp  int64
	dead bool
}

type queued[E any] struct {
	e   E
	exp int64
}

type valueTable[T any] struct {
	d   Descriptor
	ttl int64
	ser Serializer[T]
	h   *Heap
	m   map[skey]*valueEntry[T]
	q   ttlQueue[queued[*valueEntry[T]]]
	// last is the entry looked up last, still in m, and lastK the key it
	// was looked up with: an operator usually reads and then writes the
	// same key's value.
	last  *valueEntry[T]
	lastK skey
	chunk []valueEntry[T] // entries not handed out yet

	sizeEstimate
}

// newEntry allocates entries in chunks: entries made at about the same
// time sit together in memory, which keeps a hot key range in fewer cache
// lines, and the allocator runs once per chunk. A chunk is freed when its
// last entry is.
func (t *valueTable[T]) newEntry() *valueEntry[T] {
	if len(t.chunk) == 0 {
		t.chunk = make([]valueEntry[T], entryChunk)
	}
	e := &t.chunk[0]
	t.chunk = t.chunk[1:]
	return e
}

const entryChunk = 32

func (t *valueTable[T]) desc() Descriptor       { return t.d }
func (t *valueTable[T]) len() int               { return len(t.m) }
func (t *valueTable[T]) setEncodedSize(n int64) { t.perEntry = n / max(int64(len(t.m)), 1) }

func (t *valueTable[T]) lookup(k skey) *valueEntry[T] {
	if t.last != nil && identical(t.lastK, k) {
		return t.last
	}
	e := t.m[k]
	if e != nil {
		t.last, t.lastK = e, k
	}
	return e
}

func (t *valueTable[T]) remove(e *valueEntry[T]) {
	e.dead = true
	delete(t.m, e.k)
	var zero T
	e.v = zero // the entry's chunk may outlive it
	if t.last == e {
		t.last, t.lastK = nil, skey{}
	}
}

func (t *valueTable[T]) clearAll() {
	for _, e := range t.m {
		e.dead = true
	}
	t.m = map[skey]*valueEntry[T]{}
	t.last, t.lastK = nil, skey{}
	t.q.reset()
}

func (t *valueTable[T]) cleanup(now int64, n int) int {
	return expire(&t.q, now, n, func(e *valueEntry[T]) (bool, int64) { return e.dead, e.exp }, t.remove)
}

// Payload: expiry (varint, 0: none), then the serialized value.
func (t *valueTable[T]) collect(recs []snapRec, now int64) ([]snapRec, error) {
	var buf []byte
	for _, e := range t.m {
		if expired(e.exp, now) {
			continue
		}
		start := len(buf)
		buf = binary.AppendVarint(buf, e.exp)
		var err error
		if buf, err = t.ser.Append(buf, e.v); err != nil {
			return nil, fmt.Errorf("state %q key %v: %w", t.d.Name, e.k.key, err)
		}
		recs = append(recs, snapRec{k: e.k, payload: buf[start:len(buf):len(buf)]})
	}
	return recs, nil
}

func (t *valueTable[T]) load(recs []rawRec, now int64) error {
	for _, r := range recs {
		d := &reader{b: r.payload}
		exp := d.varint()
		if d.err != nil {
			return fmt.Errorf("key %v: %w", r.k.key, d.err)
		}
		if expired(exp, now) {
			continue
		}
		v, err := t.ser.Decode(d.b)
		if err != nil {
			return fmt.Errorf("key %v: %w", r.k.key, err)
		}
		if _, dup := t.m[r.k]; dup {
			return fmt.Errorf("key %v namespace %d appears twice", r.k.key, r.k.ns)
		}
		if t.ttl == 0 {
			exp = 0
		} else if exp == 0 || exp > now+t.ttl {
			// The TTL was added or shortened since the snapshot.
			exp = now + t.ttl
		}
		e := &valueEntry[T]{k: r.k, v: v, exp: exp}
		t.m[r.k] = e
		if exp != 0 {
			t.q.push(queued[*valueEntry[T]]{e, exp})
		}
	}
	return nil
}

// Range calls fn for every live value of every key, in no particular
// order, until fn returns false. fn must not change the state. It is for
// checks and size estimates after a restore, not for the record path.
func (v *Value[T]) Range(fn func(key any, ns int64, val T) bool) {
	now := int64(0)
	if v.t.ttl > 0 {
		now = v.h.cfg.Now()
	}
	for k, e := range v.t.m {
		if v.t.ttl > 0 && expired(e.exp, now) {
			continue
		}
		if !fn(k.key, k.ns, e.v) {
			return
		}
	}
}
