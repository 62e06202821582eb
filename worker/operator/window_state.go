package operator

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/state"
)

// Window snapshot format, version 1. Integers are varints (signed ones
// zig-zag), floats 8 bytes little endian.
//
//	magic "wwin", version byte 1
//	max_parallelism, watermark, size, slide (ms)
//	number of aggregates, then one function byte each
//	number of key groups, then per key group (ascending):
//	    key group, byte length of the block, block:
//	        number of window ends, then per end (ascending):
//	            end, number of keys, then per key (ascending):
//	                key value, fired byte, one cell per aggregate
//
// A cell is count: n; sum/avg: n, float byte, then the float (8 bytes) or
// the integer sum; min/max: n, value. A value is a tag byte (0 null, 1
// false, 2 true, 3 int64, 4 float64, 5 string) and its payload; a string is
// its length and bytes.
//
// Grouping by key group lets Restore skip the blocks of key groups another
// subtask owns after rescaling without decoding them.
const (
	stateMagic   = "wwin"
	stateVersion = 1
)

const (
	tagNull = iota
	tagFalse
	tagTrue
	tagInt
	tagFloat
	tagString
)

// ErrBadState is wrapped by every error restoring a window state that is
// corrupt or does not fit the job.
var ErrBadState = errors.New("cannot restore window state")

func (w *window) maxParallelism() int {
	if w.ctx != nil && w.ctx.MaxParallelism > 0 {
		return w.ctx.MaxParallelism
	}
	return dataflow.DefaultMaxParallelism
}

func (w *window) keyGroups() dataflow.KeyGroupRange {
	if w.ctx != nil && w.ctx.MaxParallelism > 0 {
		return w.ctx.KeyGroups
	}
	return dataflow.KeyGroupRange{Start: 0, End: w.maxParallelism() - 1}
}

type snapEntry struct {
	kg   int
	end  int64
	key  any
	slot int32
}

// windowCapture is a window's state at a barrier: the windows and their
// slots, and copies of the slot arrays, which later processing changes
// in place. Encoding it touches nothing of the operator.
type windowCapture struct {
	maxPar          int
	wm, size, slide int64
	fns             []aggFn
	entries         []snapEntry // kg is filled in by encode
	fired           []bool
	cells           []cell
}

// capture takes what a snapshot needs, as cheaply as the task goroutine
// can (a walk of the index and two slice copies; the key groups, the sort
// and the encoding wait for encode).
func (w *window) capture() *windowCapture {
	c := &windowCapture{
		maxPar: w.maxParallelism(), wm: w.wm, size: w.size, slide: w.slide,
		entries: make([]snapEntry, 0, len(w.index)),
		fired:   slices.Clone(w.fired),
		cells:   slices.Clone(w.cells),
	}
	for _, a := range w.aggs {
		c.fns = append(c.fns, a.fn)
	}
	for wk, slot := range w.index {
		c.entries = append(c.entries, snapEntry{end: wk.end, key: wk.key, slot: slot})
	}
	return c
}

// Snapshot encodes every window's state and the watermark. The result
// shares nothing with the operator.
func (w *window) Snapshot(int64) ([]byte, error) {
	b, keys := w.capture().encode()
	w.snapKeys = keys
	return b, nil
}

// CaptureSnapshot implements dataflow.AsyncSnapshotter: the capture at the
// barrier, the encoding (sort and serialization, most of the cost with
// many keys) on the upload goroutine.
func (w *window) CaptureSnapshot(int64) (func() ([]byte, dataflow.SnapshotSummary, error), error) {
	c := w.capture()
	return func() ([]byte, dataflow.SnapshotSummary, error) {
		b, keys := c.encode()
		return b, dataflow.SnapshotSummary{Keys: keys}, nil
	}, nil
}

// encode writes the format above and counts the distinct keys.
func (c *windowCapture) encode() ([]byte, int64) {
	entries := c.entries
	kgOf := make(map[any]int)
	for i := range entries {
		kg, ok := kgOf[entries[i].key]
		if !ok {
			kg = dataflow.KeyGroup(entries[i].key, c.maxPar)
			kgOf[entries[i].key] = kg
		}
		entries[i].kg = kg
	}
	slices.SortFunc(entries, func(a, b snapEntry) int {
		if a.kg != b.kg {
			return cmp.Compare(a.kg, b.kg)
		}
		if a.end != b.end {
			return cmp.Compare(a.end, b.end)
		}
		return state.CompareKeys(a.key, b.key)
	})

	buf := make([]byte, 0, 64+len(entries)*(16+8*len(c.fns)))
	buf = append(buf, stateMagic...)
	buf = append(buf, stateVersion)
	buf = binary.AppendUvarint(buf, uint64(c.maxPar))
	buf = binary.AppendVarint(buf, c.wm)
	buf = binary.AppendUvarint(buf, uint64(c.size))
	buf = binary.AppendUvarint(buf, uint64(c.slide))
	buf = binary.AppendUvarint(buf, uint64(len(c.fns)))
	for _, fn := range c.fns {
		buf = append(buf, byte(fn))
	}
	groups := 0
	for i := range entries {
		if i == 0 || entries[i].kg != entries[i-1].kg {
			groups++
		}
	}
	buf = binary.AppendUvarint(buf, uint64(groups))
	var block []byte
	for i := 0; i < len(entries); {
		j := i
		for j < len(entries) && entries[j].kg == entries[i].kg {
			j++
		}
		block = c.encodeGroup(block[:0], entries[i:j])
		buf = binary.AppendUvarint(buf, uint64(entries[i].kg))
		buf = binary.AppendUvarint(buf, uint64(len(block)))
		buf = append(buf, block...)
		i = j
	}
	return buf, int64(len(kgOf))
}

func (c *windowCapture) encodeGroup(buf []byte, es []snapEntry) []byte {
	ends := 0
	for i := range es {
		if i == 0 || es[i].end != es[i-1].end {
			ends++
		}
	}
	buf = binary.AppendUvarint(buf, uint64(ends))
	n := len(c.fns)
	for i := 0; i < len(es); {
		j := i
		for j < len(es) && es[j].end == es[i].end {
			j++
		}
		buf = binary.AppendVarint(buf, es[i].end)
		buf = binary.AppendUvarint(buf, uint64(j-i))
		for _, e := range es[i:j] {
			buf = appendValue(buf, e.key)
			if c.fired[e.slot] {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
			cells := c.cells[int(e.slot)*n : int(e.slot+1)*n]
			for k := range cells {
				buf = appendCell(buf, c.fns[k], &cells[k])
			}
		}
		i = j
	}
	return buf
}

func appendCell(buf []byte, fn aggFn, c *cell) []byte {
	buf = binary.AppendUvarint(buf, uint64(c.n))
	switch fn {
	case aggSum, aggAvg:
		if c.flt {
			buf = append(buf, 1)
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(c.f))
		} else {
			buf = append(buf, 0)
			buf = binary.AppendVarint(buf, c.i)
		}
	case aggMin, aggMax:
		buf = appendValue(buf, c.v)
	}
	return buf
}

func appendValue(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, tagNull)
	case bool:
		if x {
			return append(buf, tagTrue)
		}
		return append(buf, tagFalse)
	case int64:
		buf = append(buf, tagInt)
		return binary.AppendVarint(buf, x)
	case float64:
		buf = append(buf, tagFloat)
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
	case string:
		buf = append(buf, tagString)
		buf = binary.AppendUvarint(buf, uint64(len(x)))
		return append(buf, x...)
	}
	// Keys and cell values are checked on the way in; this is unreachable.
	return append(buf, tagNull)
}

// SnapshotSummary implements dataflow.SnapshotSummarizer: the number of
// distinct keys with window state in the last snapshot taken with
// Snapshot (CaptureSnapshot's encoding returns its own).
func (w *window) SnapshotSummary() dataflow.SnapshotSummary {
	return dataflow.SnapshotSummary{Keys: w.snapKeys}
}

// Restore replaces the operator's state with the windows of the given
// snapshots whose key group this subtask owns. Several snapshots (from the
// subtasks of an earlier run at another parallelism) are merged; the
// watermark restored is the smallest of theirs, so nothing that was on time
// in any of them becomes late. Empty states are skipped. On error the
// operator is left empty.
func (w *window) Restore(states [][]byte) error {
	w.reset()
	w.wm = math.MinInt64
	wm, restored := int64(math.MaxInt64), false
	for i, s := range states {
		if len(s) == 0 {
			continue
		}
		swm, err := w.restoreOne(s)
		if err != nil {
			w.reset()
			return fmt.Errorf("node %s: %w: snapshot %d of %d: %w", w.node, ErrBadState, i+1, len(states), err)
		}
		restored = true
		wm = min(wm, swm)
	}
	if restored {
		w.wm = wm
	}
	w.publishStateSize()
	return nil
}

type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must not exceed what is left to read.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)/max(minSize, 1)) {
		d.fail(fmt.Errorf("count %d exceeds the data", v))
		return 0
	}
	return int(v)
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail(errTruncated)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) float() float64 {
	p := d.bytes(8)
	if p == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p))
}

func (d *decoder) value() any {
	switch t := d.byte(); t {
	case tagNull:
		return nil
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagInt:
		return d.varint()
	case tagFloat:
		return d.float()
	case tagString:
		n := d.count(1)
		return string(d.bytes(n))
	default:
		d.fail(fmt.Errorf("unknown value tag %d", t))
		return nil
	}
}

// restoreOne merges one snapshot into the state and returns its watermark.
func (w *window) restoreOne(s []byte) (int64, error) {
	if len(s) < len(stateMagic)+1 || string(s[:len(stateMagic)]) != stateMagic {
		return 0, errors.New("not a window state")
	}
	if v := s[len(stateMagic)]; v != stateVersion {
		return 0, fmt.Errorf("format version %d, this weir reads %d", v, stateVersion)
	}
	d := &decoder{b: s[len(stateMagic)+1:]}
	maxPar := d.uvarint()
	wm := d.varint()
	size, slide := d.uvarint(), d.uvarint()
	nAggs := d.count(1)
	if d.err != nil {
		return 0, d.err
	}
	if maxPar != uint64(w.maxParallelism()) {
		return 0, fmt.Errorf("max_parallelism is %d in the snapshot and %d in the job; it cannot change", maxPar, w.maxParallelism())
	}
	if size != uint64(w.size) || slide != uint64(w.slide) {
		return 0, fmt.Errorf("window size/slide %d/%d ms in the snapshot, %d/%d ms in the job; the window shape cannot change",
			size, slide, w.size, w.slide)
	}
	if nAggs != len(w.aggs) {
		return 0, fmt.Errorf("%d aggregates in the snapshot, %d in the job", nAggs, len(w.aggs))
	}
	for i := range w.aggs {
		if fn := aggFn(d.byte()); d.err == nil && fn != w.aggs[i].fn {
			return 0, fmt.Errorf("aggregate %d is %s in the snapshot and %s(…) in the job", i+1, fn, w.aggs[i].fn)
		}
	}
	groups := d.count(2)
	owned := w.keyGroups()
	prev := -1
	for range groups {
		kg := d.uvarint()
		n := d.count(1)
		block := d.bytes(n)
		if d.err != nil {
			return 0, d.err
		}
		if kg >= maxPar || int(kg) <= prev {
			return 0, fmt.Errorf("key group %d out of order or range", kg)
		}
		prev = int(kg)
		if !owned.Contains(int(kg)) {
			continue
		}
		if err := w.restoreGroup(int(kg), block); err != nil {
			return 0, fmt.Errorf("key group %d: %w", kg, err)
		}
	}
	if d.err != nil {
		return 0, d.err
	}
	if len(d.b) != 0 {
		return 0, fmt.Errorf("%d bytes after the end", len(d.b))
	}
	return wm, nil
}

func (w *window) restoreGroup(kg int, block []byte) error {
	d := &decoder{b: block}
	maxPar := w.maxParallelism()
	n := len(w.aggs)
	ends := d.count(2)
	for range ends {
		end := d.varint()
		keys := d.count(2)
		if d.err != nil {
			return d.err
		}
		if end-w.size <= -maxEventTime || end >= maxEventTime+w.size || mod(end-w.size, w.slide) != 0 {
			return fmt.Errorf("window end %d does not fit the window shape", end)
		}
		for range keys {
			key := d.value()
			fired := d.byte()
			if d.err != nil {
				return d.err
			}
			if err := checkKey(key); err != nil {
				return err
			}
			if fired > 1 {
				return fmt.Errorf("bad fired flag %d", fired)
			}
			if g := dataflow.KeyGroup(key, maxPar); g != kg {
				return fmt.Errorf("key %v belongs to key group %d", key, g)
			}
			wk := winKey{key, end}
			if _, dup := w.index[wk]; dup {
				return fmt.Errorf("window %d of key %v appears twice", end, key)
			}
			slot := w.newSlot()
			w.index[wk] = slot
			w.keyBytes += keyBytes(key)
			w.fired[slot] = fired == 1
			b := w.bucketFor(end)
			if len(b.keys) == 0 {
				b.fired = true
			}
			b.keys = append(b.keys, key)
			b.fired = b.fired && fired == 1
			cells := w.cells[slot*int32(n) : (slot+1)*int32(n)]
			for i := range cells {
				if err := decodeCell(d, w.aggs[i].fn, &cells[i]); err != nil {
					return fmt.Errorf("window %d of key %v: %s: %w", end, key, w.aggs[i].fn, err)
				}
			}
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

func decodeCell(d *decoder, fn aggFn, c *cell) error {
	n := d.uvarint()
	if n > math.MaxInt64 {
		return errors.New("bad count")
	}
	c.n = int64(n)
	switch fn {
	case aggSum, aggAvg:
		switch d.byte() {
		case 0:
			c.i = d.varint()
		case 1:
			c.flt = true
			c.f = d.float()
		default:
			if d.err == nil {
				return errors.New("bad number flag")
			}
		}
	case aggMin, aggMax:
		c.v = d.value()
		if d.err != nil {
			return d.err
		}
		if err := checkArg(fn, c.v); err != nil {
			return err
		}
		if (c.v == nil) != (c.n == 0) {
			return errors.New("value and count disagree")
		}
	}
	return d.err
}

// State size estimate. The window's heap is mostly its index entries (the
// map slot with its boxed key, and the key again in its end's bucket) and
// the slab of cells; keyBytes follows the boxed keys as windows come and
// go, the rest is read off the structures. The gauge is refreshed on each
// watermark, every stateSyncEvery new windows and at restore, so the
// per-record path gains one integer addition only when it opens a window.
const (
	// mapEntryBytes: a Go map slot for winKey → int32 (24 + 4 bytes, at
	// the map's load factor, with its control byte).
	mapEntryBytes = 40
	// bucketKeyBytes: the key's interface in its bucket's key list.
	bucketKeyBytes = 16
	stateSyncEvery = 4096
)

var cellBytes = int64(unsafe.Sizeof(cell{}))

// keyBytes is what one boxed key holds on the heap.
func keyBytes(k any) int64 {
	if s, ok := k.(string); ok {
		return 16 + int64(len(s))
	}
	return 8
}

// Open takes the context and registers the state size gauge.
func (w *window) Open(ctx *dataflow.Context) error {
	if err := w.base.Open(ctx); err != nil {
		return err
	}
	if m := w.metrics(); m != nil && w.stateGauge == nil {
		w.stateGauge = m.StateSize(w.node)
	}
	w.publishStateSize()
	return nil
}

// stateBytes estimates the operator's state on the heap.
func (w *window) stateBytes() int64 {
	return int64(len(w.index))*(mapEntryBytes+bucketKeyBytes) + w.keyBytes +
		int64(cap(w.cells))*cellBytes + int64(cap(w.fired)) + 4*int64(cap(w.free))
}

func (w *window) publishStateSize() {
	w.newWindows = 0
	if w.stateGauge != nil {
		w.stateGauge.Bytes.Store(w.stateBytes())
	}
}

// windowOpened accounts for a window added to the index with key k.
func (w *window) windowOpened(k any) {
	w.keyBytes += keyBytes(k)
	if w.newWindows++; w.newWindows >= stateSyncEvery {
		w.publishStateSize()
	}
}
