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
		e = &valueEntry[T]{k: k}
		t.m[k] = e
		t.last = e
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
	// last is the entry looked up last, still in m: an operator usually
	// reads and then writes the same key's value.
	last *valueEntry[T]
	sizeEstimate
}

func (t *valueTable[T]) desc() Descriptor       { return t.d }
func (t *valueTable[T]) len() int               { return len(t.m) }
func (t *valueTable[T]) setEncodedSize(n int64) { t.perEntry = n / max(int64(len(t.m)), 1) }

func (t *valueTable[T]) lookup(k skey) *valueEntry[T] {
	if t.last != nil && t.last.k == k {
		return t.last
	}
	e := t.m[k]
	if e != nil {
		t.last = e
	}
	return e
}

func (t *valueTable[T]) remove(e *valueEntry[T]) {
	e.dead = true
	delete(t.m, e.k)
	if t.last == e {
		t.last = nil
	}
}

func (t *valueTable[T]) clearAll() {
	for _, e := range t.m {
		e.dead = true
	}
	t.m = map[skey]*valueEntry[T]{}
	t.last = nil
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
