package state

// The heap backend interns keys: SetCurrentKey finds the key's dense id
// with one hash of the interface key, and every table keeps its entries in
// a slice indexed by that id. A state access is then an index and a
// namespace compare, not a hash of an interface key per state (which was
// most of what user code paid beyond the built-in window: docs/bench.md,
// `sdk`). An id lives while anything refers to it (an entry of a table, a
// timer in a queue) and is reused after.

// noKey is the current key's id when the key has no state.
const noKey int32 = -1

type keySlot struct {
	key  any
	refs int32
}

// keyIndex maps keys to ids; string keys (the usual ones) in a map of
// their own, which hashes the string directly instead of through the
// interface's type.
type keyIndex struct {
	strs map[string]int32
	ids  map[any]int32
	keys []keySlot
	free []int32
}

func (x *keyIndex) init() { x.strs, x.ids = map[string]int32{}, map[any]int32{} }

func (x *keyIndex) find(key any) (int32, bool) {
	if s, ok := key.(string); ok {
		id, ok := x.strs[s]
		return id, ok
	}
	id, ok := x.ids[key]
	return id, ok
}

// lookup returns key's id, or noKey.
func (x *keyIndex) lookup(key any) int32 {
	if id, ok := x.find(key); ok {
		return id
	}
	return noKey
}

// intern returns key's id, making one.
func (x *keyIndex) intern(key any) int32 {
	if id, ok := x.find(key); ok {
		return id
	}
	var id int32
	if n := len(x.free); n > 0 {
		id = x.free[n-1]
		x.free = x.free[:n-1]
		x.keys[id] = keySlot{key: key}
	} else {
		id = int32(len(x.keys))
		x.keys = append(x.keys, keySlot{key: key})
	}
	if s, ok := key.(string); ok {
		x.strs[s] = id
	} else {
		x.ids[key] = id
	}
	return id
}

func (x *keyIndex) key(id int32) any { return x.keys[id].key }

func (x *keyIndex) ref(id int32) { x.keys[id].refs++ }

// unref drops a reference and reports whether the id was freed.
func (x *keyIndex) unref(id int32) bool {
	s := &x.keys[id]
	if s.refs--; s.refs > 0 {
		return false
	}
	if str, ok := s.key.(string); ok {
		delete(x.strs, str)
	} else {
		delete(x.ids, s.key)
	}
	*s = keySlot{}
	x.free = append(x.free, id)
	return true
}

// release frees id when nothing refers to it (a restored key whose
// entries had all expired).
func (x *keyIndex) release(id int32) {
	if x.keys[id].refs == 0 {
		x.keys[id].refs = 1
		x.unref(id)
	}
}

// curID is the current key's id, interning it: for writes.
func (h *Heap) curID() int32 {
	if h.cid == noKey {
		h.cid = h.keys.intern(h.cur)
	}
	return h.cid
}

func (h *Heap) ref(id int32) { h.keys.ref(id) }

func (h *Heap) unref(id int32) {
	if h.keys.unref(id) && h.cid == id {
		h.cid = noKey
	}
}

// kslot is a small map from K to *X: the first entry inline, the others
// in a Go map. A key's entries of a table by namespace are one (most
// operators use one namespace per key, or a few), and so are a map
// state's entries of one key, which are few in most uses (a count per
// open window): the inline entry costs one load where a Go map costs a
// hash and three.
type kslot[K comparable, X any] struct {
	k    K
	e    *X // nil: the slot is empty (and more too)
	more map[K]*X
}

func (s *kslot[K, X]) get(k K) *X {
	if s.e != nil && s.k == k {
		return s.e
	}
	if s.more != nil {
		return s.more[k]
	}
	return nil
}

// put sets k to x, which is not in the slot yet.
func (s *kslot[K, X]) put(k K, x *X) {
	if s.e == nil {
		s.k, s.e = k, x
		return
	}
	if s.more == nil {
		s.more = map[K]*X{}
	}
	s.more[k] = x
}

func (s *kslot[K, X]) del(k K) {
	if s.e != nil && s.k == k {
		var zero K
		s.k, s.e = zero, nil
		for k, v := range s.more {
			s.k, s.e = k, v
			delete(s.more, k)
			break
		}
		return
	}
	delete(s.more, k)
}

func (s *kslot[K, X]) empty() bool { return s.e == nil }

func (s *kslot[K, X]) len() int {
	if s.e == nil {
		return 0
	}
	return 1 + len(s.more)
}

// each calls fn for every entry until it returns false; fn must not
// change the slot.
func (s *kslot[K, X]) each(fn func(k K, x *X) bool) {
	if s.e == nil || !fn(s.k, s.e) {
		return
	}
	for k, x := range s.more {
		if !fn(k, x) {
			return
		}
	}
}

// all lists the entries, for callers that change the slot as they go.
func (s *kslot[K, X]) all() []*X {
	out := make([]*X, 0, s.len())
	s.each(func(_ K, x *X) bool { out = append(out, x); return true })
	return out
}

type nsSlot[X any] = kslot[int64, X]

// slots is a table's entries by key id.
type slots[X any] []nsSlot[X]

func (s slots[X]) get(id int32, ns int64) *X {
	if id < 0 || int(id) >= len(s) {
		return nil
	}
	return s[id].get(ns)
}

// put adds x under (id, ns), which has none. A key's first entry in the
// table takes a reference on it in h, so the key index keeps the key.
func (s *slots[X]) put(h *Heap, id int32, ns int64, x *X) {
	if int(id) >= len(*s) {
		*s = append(*s, make([]nsSlot[X], int(id)+1-len(*s))...)
	}
	sl := &(*s)[id]
	if sl.empty() {
		h.ref(id)
	}
	sl.put(ns, x)
}

// del removes (id, ns); a key's last entry in the table drops its
// reference in h.
func (s slots[X]) del(h *Heap, id int32, ns int64) {
	sl := &s[id]
	sl.del(ns)
	if sl.empty() {
		h.unref(id)
	}
}

// each calls fn for every entry of every key and namespace.
func (s slots[X]) each(fn func(x *X)) {
	for i := range s {
		s[i].each(func(_ int64, x *X) bool { fn(x); return true })
	}
}

// release drops the reference each key with an entry holds on h; the
// caller then forgets the slots.
func (s slots[X]) release(h *Heap) {
	for id := range s {
		if !s[id].empty() {
			h.unref(int32(id))
		}
	}
}
