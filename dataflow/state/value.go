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
	t := &valueTable[T]{d: d, ttl: ttlMillis(d.TTL), ser: ser, h: h}
	t.clone, t.shareable = copier(ser)
	if err := h.register(d, t); err != nil {
		return nil, err
	}
	return &Value[T]{h: h, t: t}, nil
}

// Get returns the current key's value in namespace ns, and whether there
// is one (an expired one is not).
func (v *Value[T]) Get(ns int64) (T, bool, error) {
	t := v.t
	e := t.lookup(v.h.cid, ns)
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
	e := t.lookup(v.h.cid, ns)
	if e == nil {
		e = t.newEntry(v.h.curID(), ns)
		t.add(e)
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
	e := t.lookup(v.h.cid, ns)
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
		e = t.newEntry(v.h.curID(), ns)
		e.v = val
		t.add(e)
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
	if e := v.t.lookup(v.h.cid, ns); e != nil {
		v.t.remove(e)
	}
	return nil
}

type valueEntry[T any] struct {
	id   int32 // the key's, in the backend's key index
	dead bool
	ns   int64
	v    T
	exp  int64
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
	m   slots[valueEntry[T]]
	n   int
	q   ttlQueue[queued[*valueEntry[T]]]
	// last is the entry looked up last, still in m: an operator usually
	// reads and then writes the same key's value.
	last  *valueEntry[T]
	chunk []valueEntry[T] // entries not handed out yet
	// shareable: values can be copied at a capture (with clone, when
	// set) and encoded later.
	shareable bool
	clone     func(T) T
	sizeEstimate
}

// newEntry allocates entries in chunks: entries made at about the same
// time sit together in memory, which keeps a hot key range in fewer cache
// lines, and the allocator runs once per chunk. A chunk is freed when its
// last entry is.
func (t *valueTable[T]) newEntry(id int32, ns int64) *valueEntry[T] {
	if len(t.chunk) == 0 {
		t.chunk = make([]valueEntry[T], entryChunk)
	}
	e := &t.chunk[0]
	t.chunk = t.chunk[1:]
	e.id, e.ns = id, ns
	return e
}

const entryChunk = 32

func (t *valueTable[T]) desc() Descriptor { return t.d }
func (t *valueTable[T]) len() int         { return t.n }

func (t *valueTable[T]) lookup(id int32, ns int64) *valueEntry[T] {
	if e := t.last; e != nil && e.id == id && e.ns == ns {
		return e
	}
	e := t.m.get(id, ns)
	if e != nil {
		t.last = e
	}
	return e
}

func (t *valueTable[T]) add(e *valueEntry[T]) {
	t.m.put(t.h, e.id, e.ns, e)
	t.n++
	t.last = e
}

func (t *valueTable[T]) remove(e *valueEntry[T]) {
	e.dead = true
	t.n--
	var zero T
	e.v = zero // the entry's chunk may outlive it
	if t.last == e {
		t.last = nil
	}
	t.m.del(t.h, e.id, e.ns)
}

// each calls fn for every entry, expired ones included.
func (t *valueTable[T]) each(fn func(e *valueEntry[T])) { t.m.each(fn) }

func (t *valueTable[T]) clearAll() {
	t.m.each(func(e *valueEntry[T]) { e.dead = true })
	t.m.release(t.h)
	t.m, t.n = nil, 0
	t.last, t.chunk = nil, nil
	t.q.reset()
}

func (t *valueTable[T]) cleanup(now int64, n int) int {
	return expire(&t.q, now, n, func(e *valueEntry[T]) (bool, int64) { return e.dead, e.exp }, t.remove)
}

// Payload: expiry (varint, 0: none), then the serialized value.
func (t *valueTable[T]) capture(now int64) (func() ([]snapRec, error), error) {
	type copied struct {
		k   skey
		v   T
		exp int64
	}
	es := make([]copied, 0, t.n)
	t.each(func(e *valueEntry[T]) {
		if !expired(e.exp, now) {
			v := e.v
			if t.clone != nil && t.shareable {
				v = t.clone(v)
			}
			es = append(es, copied{skey{t.h.keys.key(e.id), e.ns}, v, e.exp})
		}
	})
	ser, name := t.ser, t.d.Name
	encode := func() ([]snapRec, error) {
		recs := make([]snapRec, 0, len(es))
		var buf []byte
		for _, e := range es {
			start := len(buf)
			buf = binary.AppendVarint(buf, e.exp)
			var err error
			if buf, err = ser.Append(buf, e.v); err != nil {
				return nil, fmt.Errorf("state %q key %v: %w", name, e.k.key, err)
			}
			recs = append(recs, snapRec{k: e.k, payload: buf[start:len(buf):len(buf)]})
		}
		return recs, nil
	}
	if !t.shareable {
		return encodedNow(encode())
	}
	return encode, nil
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
		id := t.h.keys.intern(r.k.key)
		if t.m.get(id, r.k.ns) != nil {
			return fmt.Errorf("key %v namespace %d appears twice", r.k.key, r.k.ns)
		}
		if t.ttl == 0 {
			exp = 0
		} else if exp == 0 || exp > now+t.ttl {
			// The TTL was added or shortened since the snapshot.
			exp = now + t.ttl
		}
		e := t.newEntry(id, r.k.ns)
		e.v, e.exp = v, exp
		t.add(e)
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
	for id := range v.t.m {
		more := true
		v.t.m[id].each(func(ns int64, e *valueEntry[T]) bool {
			if v.t.ttl == 0 || !expired(e.exp, now) {
				more = fn(v.h.keys.key(int32(id)), ns, e.v)
			}
			return more
		})
		if !more {
			return
		}
	}
}
