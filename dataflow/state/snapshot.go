package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/weir-stream/weir/dataflow"
)

// Snapshot format, version 1: the portable form of keyed state, the same
// whatever backend wrote it. Integers are varints (signed ones zig-zag).
//
//	magic "wkst", version byte 1
//	max_parallelism
//	number of states, then per state: name (length, bytes), kind byte
//	number of key groups, then per key group (ascending):
//	    key group, byte length of the block, block:
//	        per state, in the header's order:
//	            number of entries, then per entry (by key, namespace):
//	                key, namespace, payload (length, bytes)
//	        event-time timers: number, then per timer (by time, key,
//	            namespace): key, namespace, time
//	        processing-time timers: likewise
//
// A key is a tag byte (0 null, 1 false, 2 true, 3 int64, 4 float64,
// 5 string) and its payload (varint, 8 bytes little endian, or length and
// bytes). A payload is the state kind's encoding of its values through
// their Serializers (value.go, map.go, list.go), so a backend can restore
// an entry it does not decode yet: restored states are kept encoded until
// the operator declares them, and a state not declared again is carried
// into later snapshots unchanged.
//
// Grouping by key group lets a restore skip the blocks another subtask
// owns without decoding them, and a disk backend lay out its keys key
// group first so that rescaling moves ranges of them.
const (
	snapMagic   = "wkst"
	snapVersion = 1
)

// ErrBadSnapshot is wrapped by every error restoring a snapshot that is
// corrupt or does not fit the operator.
var ErrBadSnapshot = errors.New("cannot restore keyed state")

// snapRec is one (key, namespace) of one state in a snapshot.
type snapRec struct {
	kg      int
	k       skey
	payload []byte
}

// rawRec is a restored record not decoded yet.
type rawRec = snapRec

type pendingState struct {
	kind Kind
	recs []rawRec
}

type timerRec struct {
	kg int
	t  Timer
}

// Snapshot implements Backend.
func (h *Heap) Snapshot() ([]byte, error) {
	c, err := h.capture()
	if err != nil {
		return nil, err
	}
	b, _, err := c.encode()
	return b, err
}

// CaptureSnapshot implements Backend: the capture is a flat copy of the
// live entries (key, namespace, expiry, value), the registered timers and
// the restored states nobody declared, taken on the caller's goroutine;
// encode, which may run on another goroutine while the backend goes on
// changing, sorts, groups by key group and encodes it into exactly the
// bytes Snapshot would have returned at the capture. A table whose values
// can share memory that the operator may change in place (slices, maps,
// pointers in the value type) is encoded at the capture instead, unless
// its Serializer is a Cloner: then the values are cloned at the capture.
func (h *Heap) CaptureSnapshot() (encode func() ([]byte, SnapshotInfo, error), err error) {
	c, err := h.capture()
	if err != nil {
		return nil, err
	}
	return c.encode, nil
}

// snapCapture is a snapshot taken but not encoded yet.
type snapCapture struct {
	maxPar      int
	states      []capturedState
	event, proc []Timer
}

type capturedState struct {
	name    string
	kind    Kind
	recs    []snapRec
	later   func() ([]snapRec, error) // the copied entries' records, encoded
	t       table
	entries int64
}

func (h *Heap) capture() (*snapCapture, error) {
	now := h.cfg.Now()
	c := &snapCapture{maxPar: h.cfg.MaxParallelism, states: make([]capturedState, 0, len(h.tables)+len(h.pending))}
	for _, t := range h.tables {
		d := t.desc()
		later, err := t.capture(now)
		if err != nil {
			return nil, err
		}
		c.states = append(c.states, capturedState{name: d.Name, kind: d.Kind, later: later, t: t, entries: int64(t.len())})
	}
	for _, name := range sortedKeys(h.pending) {
		p := h.pending[name]
		// Restored records are never changed, only dropped when declared.
		c.states = append(c.states, capturedState{name: name, kind: p.kind, recs: slices.Clip(p.recs)})
	}
	c.event, c.proc = h.timers.event.timers(), h.timers.proc.timers()
	return c, nil
}

// encode writes the format above and counts the distinct keys. It touches
// nothing of the backend but the tables' size estimates, which are atomic.
func (c *snapCapture) encode() ([]byte, SnapshotInfo, error) {
	maxPar := c.maxPar
	kgOf := map[any]int{}
	keyGroup := func(k any) int {
		g, ok := kgOf[k]
		if !ok {
			g = dataflow.KeyGroup(k, maxPar)
			kgOf[k] = g
		}
		return g
	}
	states := c.states
	groups := map[int]bool{}
	for i := range states {
		recs := states[i].recs
		if states[i].later != nil {
			var err error
			if recs, err = states[i].later(); err != nil {
				return nil, SnapshotInfo{}, err
			}
		} else {
			recs = slices.Clone(recs) // sorted below, and shared with the backend
		}
		for j := range recs {
			recs[j].kg = keyGroup(recs[j].k.key)
		}
		slices.SortFunc(recs, func(a, b snapRec) int {
			if a.kg != b.kg {
				return a.kg - b.kg
			}
			return compareSKeys(a.k, b.k)
		})
		for _, r := range recs {
			groups[r.kg] = true
		}
		states[i].recs = recs
	}
	timers := func(ts []Timer) []timerRec {
		out := make([]timerRec, 0, len(ts))
		for _, tm := range ts {
			g := keyGroup(tm.Key)
			out = append(out, timerRec{g, tm})
			groups[g] = true
		}
		slices.SortFunc(out, func(a, b timerRec) int {
			if a.kg != b.kg {
				return a.kg - b.kg
			}
			return compareTimers(a.t, b.t)
		})
		return out
	}
	event, proc := timers(c.event), timers(c.proc)

	buf := append([]byte(snapMagic), snapVersion)
	buf = binary.AppendUvarint(buf, uint64(maxPar))
	buf = binary.AppendUvarint(buf, uint64(len(states)))
	for _, s := range states {
		buf = appendString(buf, s.name)
		buf = append(buf, byte(s.kind))
	}
	kgs := sortedKeys(groups)
	buf = binary.AppendUvarint(buf, uint64(len(kgs)))
	cursors := make([]int, len(states))
	sizes := make([]int64, len(states))
	var ei, pi int
	var block []byte
	for _, g := range kgs {
		block = block[:0]
		for si := range states {
			recs := states[si].recs
			j := cursors[si]
			for j < len(recs) && recs[j].kg == g {
				j++
			}
			block = binary.AppendUvarint(block, uint64(j-cursors[si]))
			for _, r := range recs[cursors[si]:j] {
				n := len(block)
				block = appendKey(block, r.k.key)
				block = binary.AppendVarint(block, r.k.ns)
				block = appendBytes(block, r.payload)
				sizes[si] += int64(len(block) - n)
			}
			cursors[si] = j
		}
		block, ei = appendTimers(block, event, ei, g)
		block, pi = appendTimers(block, proc, pi, g)
		buf = binary.AppendUvarint(buf, uint64(g))
		buf = appendBytes(buf, block)
	}
	for si, s := range states {
		if s.t != nil {
			s.t.setEncodedSize(sizes[si], s.entries)
		}
	}
	return buf, SnapshotInfo{Keys: int64(len(kgOf))}, nil
}

func appendTimers(block []byte, ts []timerRec, i, g int) ([]byte, int) {
	j := i
	for j < len(ts) && ts[j].kg == g {
		j++
	}
	block = binary.AppendUvarint(block, uint64(j-i))
	for _, t := range ts[i:j] {
		block = appendKey(block, t.t.Key)
		block = binary.AppendVarint(block, t.t.Namespace)
		block = binary.AppendVarint(block, t.t.Time)
	}
	return block, j
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Restore implements Backend. The watermark is not restored: the input's
// next watermark fires what is due. On error the backend is left empty.
func (h *Heap) Restore(snapshots [][]byte) error {
	h.reset()
	for i, s := range snapshots {
		if len(s) == 0 {
			continue
		}
		if err := h.restoreOne(s); err != nil {
			h.reset()
			return fmt.Errorf("%w: snapshot %d of %d: %w", ErrBadSnapshot, i+1, len(snapshots), err)
		}
	}
	now := h.cfg.Now()
	for _, t := range h.tables {
		d := t.desc()
		p, ok := h.pending[d.Name]
		if !ok {
			continue
		}
		if p.kind != d.Kind {
			h.reset()
			return fmt.Errorf("%w: state %q is a %s state in the snapshot and a %s state in the operator; a state's kind cannot change",
				ErrBadSnapshot, d.Name, p.kind, d.Kind)
		}
		if err := t.load(p.recs, now); err != nil {
			h.reset()
			return fmt.Errorf("%w: state %q: %w", ErrBadSnapshot, d.Name, err)
		}
		delete(h.pending, d.Name)
	}
	h.cid = h.keys.lookup(h.cur)
	return nil
}

func (h *Heap) reset() {
	for _, t := range h.tables {
		t.clearAll()
	}
	h.pending = map[string]*pendingState{}
	h.timers.reset()
	h.keys = keyIndex{}
	h.keys.init()
	h.cid = noKey
}

func (h *Heap) restoreOne(s []byte) error {
	if len(s) < len(snapMagic)+1 || string(s[:len(snapMagic)]) != snapMagic {
		return errors.New("not a keyed state snapshot")
	}
	if v := s[len(snapMagic)]; v != snapVersion {
		return fmt.Errorf("format version %d, this weir reads %d", v, snapVersion)
	}
	d := &reader{b: s[len(snapMagic)+1:]}
	maxPar := d.uvarint()
	n := d.count(2)
	if d.err != nil {
		return d.err
	}
	if maxPar != uint64(h.cfg.MaxParallelism) {
		return fmt.Errorf("max_parallelism is %d in the snapshot and %d in the job; it cannot change", maxPar, h.cfg.MaxParallelism)
	}
	states := make([]*pendingState, n)
	names := make(map[string]bool, n)
	for i := range n {
		name := d.string()
		kind := Kind(d.byte())
		if d.err != nil {
			return d.err
		}
		if name == "" || names[name] {
			return fmt.Errorf("state name %q empty or repeated", name)
		}
		if kind < KindValue || kind > KindAggregating {
			return fmt.Errorf("state %q: unknown kind %d", name, kind)
		}
		names[name] = true
		p := h.pending[name]
		if p == nil {
			p = &pendingState{kind: kind}
			h.pending[name] = p
		} else if p.kind != kind {
			return fmt.Errorf("state %q is a %s state in one snapshot and a %s state in another", name, p.kind, kind)
		}
		states[i] = p
	}
	groups := d.count(2)
	prev := -1
	for range groups {
		g := d.uvarint()
		block := d.bytes()
		if d.err != nil {
			return d.err
		}
		if g >= maxPar || int(g) <= prev {
			return fmt.Errorf("key group %d out of order or range", g)
		}
		prev = int(g)
		if !h.kgs.Contains(int(g)) {
			continue
		}
		if err := h.restoreGroup(int(g), block, states); err != nil {
			return fmt.Errorf("key group %d: %w", g, err)
		}
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%d bytes after the end", len(d.b))
	}
	return nil
}

func (h *Heap) restoreGroup(g int, block []byte, states []*pendingState) error {
	d := &reader{b: block}
	maxPar := h.cfg.MaxParallelism
	checkKey := func(k any) error {
		if kg := dataflow.KeyGroup(k, maxPar); kg != g {
			return fmt.Errorf("key %v belongs to key group %d", k, kg)
		}
		return nil
	}
	for _, p := range states {
		n := d.count(3)
		var prev *skey
		for range n {
			k := skey{d.key(), d.varint()}
			payload := d.bytes()
			if d.err != nil {
				return d.err
			}
			if err := checkKey(k.key); err != nil {
				return err
			}
			if prev != nil && compareSKeys(*prev, k) >= 0 {
				return fmt.Errorf("key %v namespace %d out of order", k.key, k.ns)
			}
			prev = &k
			p.recs = append(p.recs, rawRec{kg: g, k: k, payload: payload})
		}
	}
	for _, q := range []*timerQueue{&h.timers.event, &h.timers.proc} {
		n := d.count(3)
		for range n {
			tm := Timer{Key: d.key(), Namespace: d.varint(), Time: d.varint()}
			if d.err != nil {
				return d.err
			}
			if err := checkKey(tm.Key); err != nil {
				return err
			}
			q.add(tkey{h.keys.intern(tm.Key), tm.Namespace, tm.Time})
		}
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%d bytes after the end of the block", len(d.b))
	}
	return nil
}
