package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
)

// Map is a typed state holding a map per key and namespace. The time to
// live applies to each map entry.
type Map[K comparable, V any] struct {
	h *Heap
	t *mapTable[K, V]
}

// NewMap declares a map state in b (d.Kind KindMap or 0). kser and vser
// encode its keys and values (DefaultSerializer when nil).
func NewMap[K comparable, V any](b Backend, d Descriptor, kser Serializer[K], vser Serializer[V]) (*Map[K, V], error) {
	if d.Kind == 0 {
		d.Kind = KindMap
	}
	if d.Kind != KindMap {
		return nil, fmt.Errorf("state %q: NewMap makes map states, not %s", d.Name, d.Kind)
	}
	if kser == nil {
		kser = DefaultSerializer[K]()
	}
	if vser == nil {
		vser = DefaultSerializer[V]()
	}
	h := b.heap()
	t := &mapTable[K, V]{d: d, ttl: ttlMillis(d.TTL), kser: kser, vser: vser, h: h}
	t.clone, t.shareable = copier(vser)
	t.shareable = t.shareable && shareable(reflect.TypeFor[K]())
	if err := h.register(d, t); err != nil {
		return nil, err
	}
	return &Map[K, V]{h: h, t: t}, nil
}

// lookup returns the map of k, remembering it: an operator usually reads
// and then writes the same key's map.
func (t *mapTable[K, V]) lookup(id int32, ns int64) *mapValue[K, V] {
	if mv := t.last; mv != nil && mv.id == id && mv.ns == ns {
		return mv
	}
	mv := t.m.get(id, ns)
	if mv != nil {
		t.last = mv
	}
	return mv
}

// entry returns mv's entry under uk, remembering it likewise.
func (t *mapTable[K, V]) entry(mv *mapValue[K, V], uk K) *mapEntry[K, V] {
	if e := t.lastE; e != nil && e.parent == mv && e.uk == uk {
		return e
	}
	e := mv.m.get(uk)
	if e != nil {
		t.lastE = e
	}
	return e
}

// Get returns the value under uk in the current key's map in namespace ns.
func (m *Map[K, V]) Get(ns int64, uk K) (V, bool, error) {
	var zero V
	mv := m.t.lookup(m.h.cid, ns)
	if mv == nil {
		return zero, false, nil
	}
	e := m.t.entry(mv, uk)
	if e == nil {
		return zero, false, nil
	}
	if m.t.ttl > 0 {
		now := m.h.cfg.Now()
		if expired(e.exp, now) {
			m.t.remove(e)
			return zero, false, nil
		}
		if m.t.d.TTL.Update == OnReadAndWrite {
			e.exp = now + m.t.ttl
		}
	}
	return e.v, true, nil
}

// Put sets uk to v in the current key's map in namespace ns.
func (m *Map[K, V]) Put(ns int64, uk K, v V) error {
	t := m.t
	mv := t.lookup(m.h.cid, ns)
	var e *mapEntry[K, V]
	if mv == nil {
		// The map and its first entry in one allocation. The entry's
		// place is never reused for another entry, so pointers to it
		// (the TTL queue's) stay about it alone.
		both := &struct {
			mv mapValue[K, V]
			e  mapEntry[K, V]
		}{mv: mapValue[K, V]{id: m.h.curID(), ns: ns}}
		mv = &both.mv
		t.add(mv)
		e = &both.e
	} else {
		e = t.entry(mv, uk)
	}
	if e == nil || e.parent == nil {
		if e == nil {
			e = &mapEntry[K, V]{}
		}
		e.parent, e.uk = mv, uk
		mv.m.put(uk, e)
		t.lastE = e
		t.n++
		if t.ttl > 0 {
			e.exp = m.h.cfg.Now() + t.ttl
			t.q.push(queued[*mapEntry[K, V]]{e, e.exp})
		}
	} else if t.ttl > 0 {
		e.exp = m.h.cfg.Now() + t.ttl
	}
	e.v = v
	return nil
}

// Delete removes uk from the current key's map in namespace ns.
func (m *Map[K, V]) Delete(ns int64, uk K) error {
	if mv := m.t.lookup(m.h.cid, ns); mv != nil {
		if e := m.t.entry(mv, uk); e != nil {
			m.t.remove(e)
		}
	}
	return nil
}

// Clear removes the current key's whole map in namespace ns.
func (m *Map[K, V]) Clear(ns int64) error {
	if mv := m.t.lookup(m.h.cid, ns); mv != nil {
		for _, e := range mv.m.all() {
			m.t.remove(e)
		}
	}
	return nil
}

// Range calls fn for each live entry of the current key's map in
// namespace ns, in no particular order, until fn returns false. fn may
// not change the map.
func (m *Map[K, V]) Range(ns int64, fn func(K, V) bool) error {
	mv := m.t.lookup(m.h.cid, ns)
	if mv == nil {
		return nil
	}
	var now int64
	if m.t.ttl > 0 {
		now = m.h.cfg.Now()
	}
	mv.m.each(func(uk K, e *mapEntry[K, V]) bool {
		if m.t.ttl > 0 && expired(e.exp, now) {
			return true
		}
		return fn(uk, e.v)
	})
	return nil
}

// Len returns the number of entries of the current key's map in namespace
// ns (expired ones not yet cleaned up included).
func (m *Map[K, V]) Len(ns int64) int {
	if mv := m.t.lookup(m.h.cid, ns); mv != nil {
		return mv.m.len()
	}
	return 0
}

type mapValue[K comparable, V any] struct {
	id int32 // the key's, in the backend's key index
	ns int64
	m  kslot[K, mapEntry[K, V]]
}

type mapEntry[K comparable, V any] struct {
	parent *mapValue[K, V]
	uk     K
	v      V
	exp    int64
	dead   bool
}

type mapTable[K comparable, V any] struct {
	d     Descriptor
	ttl   int64
	kser  Serializer[K]
	vser  Serializer[V]
	h     *Heap
	m     slots[mapValue[K, V]]
	last  *mapValue[K, V] // the map looked up last, still in m
	lastE *mapEntry[K, V] // the entry looked up last, still in its map
	n     int             // entries over all maps
	q     ttlQueue[queued[*mapEntry[K, V]]]
	// shareable: keys and values can be copied at a capture (values
	// with clone, when set) and encoded later.
	shareable bool
	clone     func(V) V
	sizeEstimate
}

func (t *mapTable[K, V]) desc() Descriptor { return t.d }
func (t *mapTable[K, V]) len() int         { return t.n }

func (t *mapTable[K, V]) remove(e *mapEntry[K, V]) {
	e.dead = true
	if t.lastE == e {
		t.lastE = nil
	}
	mv := e.parent
	mv.m.del(e.uk)
	t.n--
	if mv.m.empty() {
		if t.last == mv {
			t.last = nil
		}
		t.m.del(t.h, mv.id, mv.ns)
	}
}

func (t *mapTable[K, V]) add(mv *mapValue[K, V]) {
	t.m.put(t.h, mv.id, mv.ns, mv)
	t.last = mv
}

// each calls fn for every key's map of every namespace.
func (t *mapTable[K, V]) each(fn func(mv *mapValue[K, V])) { t.m.each(fn) }

func (t *mapTable[K, V]) clearAll() {
	t.m.each(func(mv *mapValue[K, V]) {
		mv.m.each(func(_ K, e *mapEntry[K, V]) bool { e.dead = true; return true })
	})
	t.m.release(t.h)
	t.m = nil
	t.last, t.lastE = nil, nil
	t.n = 0
	t.q.reset()
}

func (t *mapTable[K, V]) cleanup(now int64, n int) int {
	return expire(&t.q, now, n, func(e *mapEntry[K, V]) (bool, int64) { return e.dead, e.exp }, t.remove)
}

type encodedEntry struct {
	k, v []byte
	exp  int64
}

// Payload: number of entries, then per entry in order of encoded key: the
// key's length and bytes, expiry, the value's length and bytes.
func (t *mapTable[K, V]) capture(now int64) (func() ([]snapRec, error), error) {
	type copiedEntry struct {
		uk  K
		v   V
		exp int64
	}
	type copied struct {
		k        skey
		from, to int // in es
	}
	ms := make([]copied, 0, len(t.m))
	es := make([]copiedEntry, 0, t.n)
	t.each(func(mv *mapValue[K, V]) {
		from := len(es)
		mv.m.each(func(uk K, e *mapEntry[K, V]) bool {
			if !expired(e.exp, now) {
				v := e.v
				if t.clone != nil && t.shareable {
					v = t.clone(v)
				}
				es = append(es, copiedEntry{uk, v, e.exp})
			}
			return true
		})
		if len(es) > from {
			ms = append(ms, copied{skey{t.h.keys.key(mv.id), mv.ns}, from, len(es)})
		}
	})
	kser, vser, name := t.kser, t.vser, t.d.Name
	encode := func() ([]snapRec, error) {
		recs := make([]snapRec, 0, len(ms))
		var buf, kb, vb []byte
		var enc []encodedEntry
		for _, m := range ms {
			enc = enc[:0]
			var arena []byte
			for _, e := range es[m.from:m.to] {
				var err error
				if kb, err = kser.Append(kb[:0], e.uk); err != nil {
					return nil, fmt.Errorf("state %q key %v: map key %v: %w", name, m.k.key, e.uk, err)
				}
				if vb, err = vser.Append(vb[:0], e.v); err != nil {
					return nil, fmt.Errorf("state %q key %v: map key %v: %w", name, m.k.key, e.uk, err)
				}
				s := len(arena)
				arena = append(arena, kb...)
				mid := len(arena)
				arena = append(arena, vb...)
				enc = append(enc, encodedEntry{k: arena[s:mid:mid], v: arena[mid:len(arena):len(arena)], exp: e.exp})
			}
			slices.SortFunc(enc, func(a, b encodedEntry) int { return bytes.Compare(a.k, b.k) })
			start := len(buf)
			buf = binary.AppendUvarint(buf, uint64(len(enc)))
			for _, e := range enc {
				buf = appendBytes(buf, e.k)
				buf = binary.AppendVarint(buf, e.exp)
				buf = appendBytes(buf, e.v)
			}
			recs = append(recs, snapRec{k: m.k, payload: buf[start:len(buf):len(buf)]})
		}
		return recs, nil
	}
	if !t.shareable {
		return encodedNow(encode())
	}
	return encode, nil
}

func (t *mapTable[K, V]) load(recs []rawRec, now int64) error {
	for _, r := range recs {
		d := &reader{b: r.payload}
		n := d.count(3)
		if d.err != nil {
			return fmt.Errorf("key %v: %w", r.k.key, d.err)
		}
		id := t.h.keys.intern(r.k.key)
		if t.m.get(id, r.k.ns) != nil {
			return fmt.Errorf("key %v namespace %d appears twice", r.k.key, r.k.ns)
		}
		mv := &mapValue[K, V]{id: id, ns: r.k.ns}
		for range n {
			kb := d.bytes()
			exp := d.varint()
			vb := d.bytes()
			if d.err != nil {
				return fmt.Errorf("key %v: %w", r.k.key, d.err)
			}
			if expired(exp, now) {
				continue
			}
			uk, err := t.kser.Decode(kb)
			if err != nil {
				return fmt.Errorf("key %v: map key: %w", r.k.key, err)
			}
			v, err := t.vser.Decode(vb)
			if err != nil {
				return fmt.Errorf("key %v: map key %v: %w", r.k.key, uk, err)
			}
			if mv.m.get(uk) != nil {
				return fmt.Errorf("key %v: map key %v appears twice", r.k.key, uk)
			}
			if t.ttl == 0 {
				exp = 0
			} else if exp == 0 || exp > now+t.ttl {
				exp = now + t.ttl
			}
			e := &mapEntry[K, V]{parent: mv, uk: uk, v: v, exp: exp}
			mv.m.put(uk, e)
			t.n++
			if exp != 0 {
				t.q.push(queued[*mapEntry[K, V]]{e, exp})
			}
		}
		if len(d.b) != 0 {
			return fmt.Errorf("key %v: %d bytes after the map", r.k.key, len(d.b))
		}
		if !mv.m.empty() {
			t.add(mv)
		} else {
			t.h.keys.release(id)
		}
	}
	return nil
}
