package state

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// List is a typed state holding a list of values per key and namespace.
// The time to live applies to the whole list.
type List[T any] struct {
	h *Heap
	t *listTable[T]
}

// NewList declares a list state in b (d.Kind KindList or 0). ser encodes
// its elements (DefaultSerializer when nil).
func NewList[T any](b Backend, d Descriptor, ser Serializer[T]) (*List[T], error) {
	if d.Kind == 0 {
		d.Kind = KindList
	}
	if d.Kind != KindList {
		return nil, fmt.Errorf("state %q: NewList makes list states, not %s", d.Name, d.Kind)
	}
	if ser == nil {
		ser = DefaultSerializer[T]()
	}
	h := b.heap()
	t := &listTable[T]{d: d, ttl: ttlMillis(d.TTL), ser: ser, h: h}
	t.clone, t.shareable = copier(ser)
	if err := h.register(d, t); err != nil {
		return nil, err
	}
	return &List[T]{h: h, t: t}, nil
}

func (l *List[T]) entry(ns int64, read bool) *listEntry[T] {
	t := l.t
	e := t.m.get(l.h.cid, ns)
	if e == nil || t.ttl == 0 {
		return e
	}
	now := l.h.cfg.Now()
	if expired(e.exp, now) {
		t.remove(e)
		return nil
	}
	if !read || t.d.TTL.Update == OnReadAndWrite {
		e.exp = now + t.ttl
	}
	return e
}

// Get returns a copy of the current key's list in namespace ns (nil when
// there is none).
func (l *List[T]) Get(ns int64) ([]T, error) {
	if e := l.entry(ns, true); e != nil {
		return slices.Clone(e.vals), nil
	}
	return nil, nil
}

// Add appends v to the current key's list in namespace ns.
func (l *List[T]) Add(ns int64, v T) error {
	e := l.entry(ns, false)
	if e == nil {
		e = l.t.create(l.h.curID(), ns, l.h.cfg.Now())
	}
	e.vals = append(e.vals, v)
	return nil
}

// Update replaces the current key's list in namespace ns; an empty vals
// deletes it.
func (l *List[T]) Update(ns int64, vals []T) error {
	if len(vals) == 0 {
		return l.Delete(ns)
	}
	e := l.entry(ns, false)
	if e == nil {
		e = l.t.create(l.h.curID(), ns, l.h.cfg.Now())
	}
	e.vals = slices.Clone(vals)
	return nil
}

// Delete removes the current key's list in namespace ns.
func (l *List[T]) Delete(ns int64) error {
	if e := l.t.m.get(l.h.cid, ns); e != nil {
		l.t.remove(e)
	}
	return nil
}

type listEntry[T any] struct {
	id   int32 // the key's, in the backend's key index
	ns   int64
	vals []T
	exp  int64
	dead bool
}

type listTable[T any] struct {
	d   Descriptor
	ttl int64
	ser Serializer[T]
	h   *Heap
	m   slots[listEntry[T]]
	n   int
	// shareable: elements can be copied at a capture (with clone, when
	// set) and encoded later.
	shareable bool
	clone     func(T) T
	q         ttlQueue[queued[*listEntry[T]]]
	sizeEstimate
}

func (t *listTable[T]) desc() Descriptor { return t.d }
func (t *listTable[T]) len() int         { return t.n }

func (t *listTable[T]) create(id int32, ns int64, now int64) *listEntry[T] {
	e := &listEntry[T]{id: id, ns: ns}
	t.add(e)
	if t.ttl > 0 {
		e.exp = now + t.ttl
		t.q.push(queued[*listEntry[T]]{e, e.exp})
	}
	return e
}

func (t *listTable[T]) add(e *listEntry[T]) {
	t.m.put(t.h, e.id, e.ns, e)
	t.n++
}

func (t *listTable[T]) remove(e *listEntry[T]) {
	e.dead = true
	t.n--
	t.m.del(t.h, e.id, e.ns)
}

// each calls fn for every entry, expired ones included.
func (t *listTable[T]) each(fn func(e *listEntry[T])) { t.m.each(fn) }

func (t *listTable[T]) clearAll() {
	t.m.each(func(e *listEntry[T]) { e.dead = true })
	t.m.release(t.h)
	t.m, t.n = nil, 0
	t.q.reset()
}

func (t *listTable[T]) cleanup(now int64, n int) int {
	return expire(&t.q, now, n, func(e *listEntry[T]) (bool, int64) { return e.dead, e.exp }, t.remove)
}

// Payload: expiry, number of elements, then each element's length and
// serialized bytes. A captured list shares its array with the entry: an
// element below the length is never written again (Add appends, Update
// copies).
func (t *listTable[T]) capture(now int64) (func() ([]snapRec, error), error) {
	type copied struct {
		k    skey
		vals []T
		exp  int64
	}
	es := make([]copied, 0, t.n)
	t.each(func(e *listEntry[T]) {
		if !expired(e.exp, now) {
			vals := slices.Clip(e.vals)
			if t.clone != nil && t.shareable {
				vals = make([]T, len(e.vals))
				for i, v := range e.vals {
					vals[i] = t.clone(v)
				}
			}
			es = append(es, copied{skey{t.h.keys.key(e.id), e.ns}, vals, e.exp})
		}
	})
	ser, name := t.ser, t.d.Name
	encode := func() ([]snapRec, error) {
		recs := make([]snapRec, 0, len(es))
		var buf, elem []byte
		for _, e := range es {
			start := len(buf)
			buf = binary.AppendVarint(buf, e.exp)
			buf = binary.AppendUvarint(buf, uint64(len(e.vals)))
			for i, v := range e.vals {
				var err error
				if elem, err = ser.Append(elem[:0], v); err != nil {
					return nil, fmt.Errorf("state %q key %v element %d: %w", name, e.k.key, i, err)
				}
				buf = appendBytes(buf, elem)
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

func (t *listTable[T]) load(recs []rawRec, now int64) error {
	for _, r := range recs {
		d := &reader{b: r.payload}
		exp := d.varint()
		n := d.count(1)
		if d.err != nil {
			return fmt.Errorf("key %v: %w", r.k.key, d.err)
		}
		if expired(exp, now) {
			continue
		}
		vals := make([]T, 0, n)
		for range n {
			b := d.bytes()
			if d.err != nil {
				return fmt.Errorf("key %v: %w", r.k.key, d.err)
			}
			v, err := t.ser.Decode(b)
			if err != nil {
				return fmt.Errorf("key %v: %w", r.k.key, err)
			}
			vals = append(vals, v)
		}
		if len(d.b) != 0 {
			return fmt.Errorf("key %v: %d bytes after the list", r.k.key, len(d.b))
		}
		id := t.h.keys.intern(r.k.key)
		if t.m.get(id, r.k.ns) != nil {
			return fmt.Errorf("key %v namespace %d appears twice", r.k.key, r.k.ns)
		}
		if t.ttl == 0 {
			exp = 0
		} else if exp == 0 || exp > now+t.ttl {
			exp = now + t.ttl
		}
		e := &listEntry[T]{id: id, ns: r.k.ns, vals: vals, exp: exp}
		t.add(e)
		if exp != 0 {
			t.q.push(queued[*listEntry[T]]{e, exp})
		}
	}
	return nil
}
