package operator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"unsafe"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/state"
)

// Window snapshot format, version 2: a small header, then the operator's
// keyed-state backend snapshot (dataflow/state/snapshot.go), which groups
// everything by key group so that a restore at another parallelism skips
// what another subtask owns. Integers are varints (signed ones zig-zag).
//
//	magic "wwin", version byte 2, window kind byte (1: aligned event
//	    time, 2: session, 3: processing-time tumbling)
//	watermark, size, slide (ms; a session window's gap and 0)
//	number of aggregates, then one function byte each
//	keyed-state snapshot:
//	    value state "windows": namespace the window's end, payload a
//	        version byte (1), the fired byte, one cell per aggregate;
//	    event-time timers (namespace the window's end): at end-1 to fire
//	        it, at end-1+allowed_lateness to purge it; processing-time
//	        windows have a processing-time timer at end-1 instead;
//	    session windows instead: value state "sessions", namespace 0, a
//	        key's sessions (window_session.go: sessSerializer), with their
//	        timers in the namespace of each session's start.
//
// A cell is count: n; sum/avg: n, float byte, then the float (8 bytes) or
// the integer sum; min/max: n, value; first/last: n, the value's time,
// value; count_distinct: n, then the n values in key order; arg_max/arg_min:
// n, the record's time, the value, and (n > 0) the record as a data-plane
// element (length, bytes). A value is the backend's tagged key
// encoding (state.AppendKey).
//
// Version 1 (weir before the window moved onto the keyed-state backend)
// is read once and turned into the backend's state:
//
//	magic "wwin", version byte 1
//	max_parallelism, watermark, size, slide (ms)
//	number of aggregates, then one function byte each
//	number of key groups, then per key group (ascending):
//	    key group, byte length of the block, block:
//	        number of window ends, then per end (ascending):
//	            end, number of keys, then per key (ascending):
//	                key value, fired byte, one cell per aggregate
const (
	stateMagic     = "wwin"
	stateVersionV1 = 1
	stateVersion   = 2

	kindAligned    = 1
	kindProcessing = 3 // 2: session windows (kindSession)

	accVersion = 1
	// windowsState is the name of the windows' value state.
	windowsState = "windows"
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

// newBackend creates the keyed-state backend and declares the windows'
// state in it.
func (w *window) newBackend() error {
	kgs := w.keyGroups()
	cfg := state.Config{MaxParallelism: w.maxParallelism(), KeyGroups: &kgs}
	if w.ctx != nil && w.ctx.Now != nil {
		cfg.Now = w.ctx.Now
	}
	w.backend = state.NewHeap(cfg)
	w.timers = w.backend.Timers()
	fns := make([]aggFn, len(w.aggs))
	for i, a := range w.aggs {
		fns[i] = a.fn
	}
	if w.gap > 0 {
		sess, err := state.NewValue[[]sessAcc](w.backend, state.Descriptor{Name: sessionsState, Kind: state.KindAggregating}, sessSerializer{fns})
		if err != nil {
			return err
		}
		w.sess = sess
		w.fireFn = w.onSessionTimer
		return nil
	}
	wins, err := state.NewValue[winAcc](w.backend, state.Descriptor{Name: windowsState, Kind: state.KindAggregating}, accSerializer{fns})
	if err != nil {
		return err
	}
	w.wins = wins
	w.fireFn = w.onTimer
	w.foldFn = w.foldInto
	return nil
}

// accSerializer encodes a window's accumulator for the backend.
type accSerializer struct{ fns []aggFn }

func (s accSerializer) Append(buf []byte, a winAcc) ([]byte, error) {
	buf = append(buf, accVersion)
	if a.fired {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	for k := range a.cells {
		var err error
		if buf, err = appendCell(buf, s.fns[k], &a.cells[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", s.fns[k], err)
		}
	}
	return buf, nil
}

func (s accSerializer) Decode(b []byte) (winAcc, error) {
	d := state.NewReader(b)
	if v := d.Byte(); d.Err() == nil && v != accVersion {
		return winAcc{}, fmt.Errorf("window state version %d, this weir reads %d", v, accVersion)
	}
	a, err := s.decode(d)
	if err != nil {
		return winAcc{}, err
	}
	if d.Len() != 0 {
		return winAcc{}, fmt.Errorf("%d bytes after the window's state", d.Len())
	}
	return a, nil
}

// decode reads the fired byte and the cells (the layout both versions
// share).
func (s accSerializer) decode(d *state.Reader) (winAcc, error) {
	fired := d.Byte()
	if d.Err() != nil {
		return winAcc{}, d.Err()
	}
	if fired > 1 {
		return winAcc{}, fmt.Errorf("bad fired flag %d", fired)
	}
	a := winAcc{fired: fired == 1, cells: make([]cell, len(s.fns))}
	for i := range a.cells {
		if err := decodeCell(d, s.fns[i], &a.cells[i]); err != nil {
			return winAcc{}, fmt.Errorf("%s: %w", s.fns[i], err)
		}
	}
	return a, nil
}

// Clone implements state.Cloner: the operator updates cells in place.
func (accSerializer) Clone(a winAcc) winAcc {
	a.cells = append([]cell(nil), a.cells...)
	for i := range a.cells {
		if a.cells[i].set != nil {
			a.cells[i].set = maps.Clone(a.cells[i].set)
		}
	}
	return a
}

func appendCell(buf []byte, fn aggFn, c *cell) ([]byte, error) {
	buf = binary.AppendUvarint(buf, uint64(c.n))
	switch fn {
	case aggSum, aggAvg:
		if c.flt {
			buf = append(buf, 1)
			buf = state.AppendFloat(buf, c.f)
		} else {
			buf = append(buf, 0)
			buf = binary.AppendVarint(buf, c.i)
		}
	case aggMin, aggMax:
		buf = state.AppendKey(buf, c.v)
	case aggFirst, aggLast:
		buf = binary.AppendVarint(buf, c.i)
		buf = state.AppendKey(buf, c.v)
	case aggCountDistinct:
		// In key order, so that a snapshot's bytes do not depend on the
		// map's iteration order.
		vs := make([]any, 0, len(c.set))
		for v := range c.set {
			vs = append(vs, v)
		}
		slices.SortFunc(vs, state.CompareKeys)
		for _, v := range vs {
			buf = state.AppendKey(buf, v)
		}
	case aggArgMax, aggArgMin:
		buf = binary.AppendVarint(buf, c.i)
		buf = state.AppendKey(buf, c.v)
		if c.n > 0 {
			// The record in the data plane's encoding (dataflow/codec.go),
			// length first. Nested maps are written in Go's map order, so
			// the bytes of a record holding one vary between snapshots.
			el := dataflow.Element{Kind: dataflow.KindRecord, Record: dataflow.Record{Fields: dataflow.FieldsOf(c.rec)}}
			enc, err := dataflow.AppendElement(nil, &el)
			if err != nil {
				return nil, err
			}
			buf = binary.AppendUvarint(buf, uint64(len(enc)))
			buf = append(buf, enc...)
		}
	}
	return buf, nil
}

func decodeCell(d *state.Reader, fn aggFn, c *cell) error {
	n := d.Uvarint()
	if n > math.MaxInt64 {
		return errors.New("bad count")
	}
	c.n = int64(n)
	switch fn {
	case aggSum, aggAvg:
		switch d.Byte() {
		case 0:
			c.i = d.Varint()
		case 1:
			c.flt = true
			c.f = d.Float()
		default:
			if d.Err() == nil {
				return errors.New("bad number flag")
			}
		}
	case aggMin, aggMax:
		c.v = d.Key()
		if d.Err() != nil {
			return d.Err()
		}
		if err := checkArg(fn, c.v); err != nil {
			return err
		}
		if (c.v == nil) != (c.n == 0) {
			return errors.New("value and count disagree")
		}
	case aggFirst, aggLast:
		c.i = d.Varint()
		c.v = d.Key()
		if d.Err() != nil {
			return d.Err()
		}
		if err := checkArg(fn, c.v); err != nil {
			return err
		}
		if (c.v == nil) != (c.n == 0) {
			return errors.New("value and count disagree")
		}
	case aggArgMax, aggArgMin:
		c.i = d.Varint()
		c.v = d.Key()
		if d.Err() != nil {
			return d.Err()
		}
		if err := checkArg(fn, c.v); err != nil {
			return err
		}
		if (c.v == nil) != (c.n == 0) {
			return errors.New("value and count disagree")
		}
		if c.n > 0 {
			enc := d.Next(d.Count(1))
			if d.Err() != nil {
				return d.Err()
			}
			els, err := dataflow.AppendDecoded(nil, enc)
			if err != nil {
				return err
			}
			if len(els) != 1 || els[0].Kind != dataflow.KindRecord {
				return errors.New("bad record")
			}
			c.rec = els[0].Record.Fields.Map()
			if c.rec == nil {
				c.rec = map[string]any{}
			}
		}
	case aggCountDistinct:
		if c.n > int64(d.Len()) {
			return errors.New("bad count")
		}
		if c.n > 0 {
			c.set = make(map[any]struct{}, c.n)
		}
		var prev any
		for k := range c.n {
			v := d.Key()
			if d.Err() != nil {
				return d.Err()
			}
			if err := checkArg(fn, v); err != nil || v == nil {
				return fmt.Errorf("bad distinct value %v", v)
			}
			if k > 0 && state.CompareKeys(prev, v) >= 0 {
				return errors.New("distinct values out of order")
			}
			c.set[v] = struct{}{}
			prev = v
		}
	}
	return d.Err()
}

// kind is the window kind byte of the snapshot header.
func (w *window) kind() byte {
	switch {
	case w.procTime:
		return kindProcessing
	case w.gap > 0:
		return kindSession
	}
	return kindAligned
}

func (w *window) appendHeader(buf []byte) []byte {
	buf = append(buf, stateMagic...)
	buf = append(buf, stateVersion, w.kind())
	buf = binary.AppendVarint(buf, w.wm)
	buf = binary.AppendUvarint(buf, uint64(w.size))
	buf = binary.AppendUvarint(buf, uint64(w.slide))
	buf = binary.AppendUvarint(buf, uint64(len(w.aggs)))
	for _, a := range w.aggs {
		buf = append(buf, byte(a.fn))
	}
	return buf
}

// Snapshot encodes every window's state and the watermark. The result
// shares nothing with the operator.
func (w *window) Snapshot(id int64) ([]byte, error) {
	encode, err := w.CaptureSnapshot(id)
	if err != nil {
		return nil, err
	}
	b, sum, err := encode()
	if err != nil {
		return nil, err
	}
	w.snapKeys = sum.Keys
	return b, nil
}

// CaptureSnapshot implements dataflow.AsyncSnapshotter: the backend's
// capture at the barrier (a copy of every window's cells), the encoding
// (sort and serialization, most of the cost with many keys) on the upload
// goroutine.
func (w *window) CaptureSnapshot(int64) (func() ([]byte, dataflow.SnapshotSummary, error), error) {
	header := w.appendHeader(nil)
	encode, err := state.CaptureSnapshot(w.backend)
	if err != nil {
		return nil, fmt.Errorf("node %s: snapshot: %w", w.node, err)
	}
	return func() ([]byte, dataflow.SnapshotSummary, error) {
		b, info, err := encode()
		if err != nil {
			return nil, dataflow.SnapshotSummary{}, fmt.Errorf("node %s: snapshot: %w", w.node, err)
		}
		return append(header, b...), dataflow.SnapshotSummary{Keys: info.Keys}, nil
	}, nil
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
// in any of them becomes late. Empty states are skipped; snapshots of
// version 1 are converted. On error the operator is left empty.
func (w *window) Restore(states [][]byte) error {
	err := w.restore(states)
	if err != nil {
		w.reset()
		w.wm = math.MinInt64
		err = fmt.Errorf("node %s: %w: %w", w.node, ErrBadState, err)
	}
	w.publishStateSize()
	return err
}

func (w *window) restore(states [][]byte) error {
	w.reset()
	w.wm = math.MinInt64
	wm, restored := int64(math.MaxInt64), false
	var keyed, v1 [][]byte
	var v1Index []int
	for i, s := range states {
		if len(s) == 0 {
			continue
		}
		swm, body, version, err := w.readHeader(s)
		if err != nil {
			return fmt.Errorf("snapshot %d of %d: %w", i+1, len(states), err)
		}
		if version == stateVersionV1 {
			v1, v1Index = append(v1, body), append(v1Index, i)
		} else {
			keyed = append(keyed, body)
		}
		restored = true
		wm = min(wm, swm)
	}
	if err := w.backend.Restore(keyed); err != nil {
		return err
	}
	for j, body := range v1 {
		if err := w.restoreV1(body); err != nil {
			return fmt.Errorf("snapshot %d of %d: %w", v1Index[j]+1, len(states), err)
		}
	}
	if err := w.checkRestored(); err != nil {
		return err
	}
	if restored {
		w.wm = wm
	}
	return nil
}

// readHeader checks a snapshot's header against the job and returns its
// watermark and what follows the header.
func (w *window) readHeader(s []byte) (wm int64, body []byte, version byte, err error) {
	if len(s) < len(stateMagic)+1 || string(s[:len(stateMagic)]) != stateMagic {
		return 0, nil, 0, errors.New("not a window state")
	}
	version = s[len(stateMagic)]
	d := state.NewReader(s[len(stateMagic)+1:])
	var maxPar uint64
	switch version {
	case stateVersionV1:
		maxPar = d.Uvarint()
	case stateVersion:
		if k := d.Byte(); d.Err() == nil && k != w.kind() {
			return 0, nil, 0, fmt.Errorf("window kind %d in the snapshot, %d in the job; the window shape (and its time) cannot change", k, w.kind())
		}
	default:
		return 0, nil, 0, fmt.Errorf("format version %d, this weir reads %d and %d", version, stateVersionV1, stateVersion)
	}
	wm = d.Varint()
	size, slide := d.Uvarint(), d.Uvarint()
	nAggs := d.Count(1)
	if d.Err() != nil {
		return 0, nil, 0, d.Err()
	}
	if version == stateVersionV1 && maxPar != uint64(w.maxParallelism()) {
		return 0, nil, 0, fmt.Errorf("max_parallelism is %d in the snapshot and %d in the job; it cannot change", maxPar, w.maxParallelism())
	}
	if w.gap > 0 && (size != uint64(w.gap) || slide != 0) {
		return 0, nil, 0, fmt.Errorf("session gap %d ms in the snapshot, %d ms in the job; the window shape cannot change", size, w.gap)
	}
	if size != uint64(w.size) || slide != uint64(w.slide) {
		return 0, nil, 0, fmt.Errorf("window size/slide %d/%d ms in the snapshot, %d/%d ms in the job; the window shape cannot change",
			size, slide, w.size, w.slide)
	}
	if nAggs != len(w.aggs) {
		return 0, nil, 0, fmt.Errorf("%d aggregates in the snapshot, %d in the job", nAggs, len(w.aggs))
	}
	for i := range w.aggs {
		if fn := aggFn(d.Byte()); d.Err() == nil && fn != w.aggs[i].fn {
			return 0, nil, 0, fmt.Errorf("aggregate %d is %s in the snapshot and %s(…) in the job", i+1, fn, w.aggs[i].fn)
		}
	}
	if d.Err() != nil {
		return 0, nil, 0, d.Err()
	}
	if d.Len() == 0 {
		return 0, nil, 0, errors.New("truncated after the header")
	}
	return wm, d.Rest(), version, nil
}

// checkRestored checks that every window restored fits the window shape,
// and counts the keys' bytes for the size estimate.
func (w *window) checkRestored() error {
	if w.gap > 0 {
		return w.checkSessions()
	}
	var err error
	w.keyBytes = 0
	w.wins.Range(func(key any, end int64, _ winAcc) bool {
		if e := w.checkEnd(end); e != nil {
			err = fmt.Errorf("key %v: %w", key, e)
			return false
		}
		w.keyBytes += keyBytes(key)
		return true
	})
	return err
}

func (w *window) checkEnd(end int64) error {
	if end-w.size <= -maxEventTime || end >= maxEventTime+w.size || mod(end-w.size, w.slide) != 0 {
		return fmt.Errorf("window end %d does not fit the window shape", end)
	}
	return nil
}

// restoreV1 reads the key groups this subtask owns from a version 1 body
// (after the header) into the backend, with the timers version 2 keeps.
func (w *window) restoreV1(body []byte) error {
	d := state.NewReader(body)
	maxPar := uint64(w.maxParallelism())
	groups := d.Count(2)
	owned := w.keyGroups()
	prev := -1
	for range groups {
		kg := d.Uvarint()
		block := d.Next(d.Count(1))
		if d.Err() != nil {
			return d.Err()
		}
		if kg >= maxPar || int(kg) <= prev {
			return fmt.Errorf("key group %d out of order or range", kg)
		}
		prev = int(kg)
		if !owned.Contains(int(kg)) {
			continue
		}
		if err := w.restoreV1Group(int(kg), block); err != nil {
			return fmt.Errorf("key group %d: %w", kg, err)
		}
	}
	if d.Err() != nil {
		return d.Err()
	}
	if d.Len() != 0 {
		return fmt.Errorf("%d bytes after the end", d.Len())
	}
	return nil
}

func (w *window) restoreV1Group(kg int, block []byte) error {
	d := state.NewReader(block)
	maxPar := w.maxParallelism()
	ser := accSerializer{}
	for _, a := range w.aggs {
		ser.fns = append(ser.fns, a.fn)
	}
	ends := d.Count(2)
	for range ends {
		end := d.Varint()
		keys := d.Count(2)
		if d.Err() != nil {
			return d.Err()
		}
		if err := w.checkEnd(end); err != nil {
			return err
		}
		for range keys {
			key := d.Key()
			if d.Err() != nil {
				return d.Err()
			}
			if err := checkKey(key); err != nil {
				return err
			}
			if g := dataflow.KeyGroup(key, maxPar); g != kg {
				return fmt.Errorf("key %v belongs to key group %d", key, g)
			}
			acc, err := ser.decode(d)
			if err != nil {
				return fmt.Errorf("window %d of key %v: %w", end, key, err)
			}
			w.backend.SetCurrentKey(key)
			if _, dup, err := w.wins.Get(end); err != nil || dup {
				if err == nil {
					err = fmt.Errorf("window %d of key %v appears twice", end, key)
				}
				return err
			}
			if err := w.wins.Put(end, acc); err != nil {
				return err
			}
			if !acc.fired {
				w.timers.RegisterEventTime(end, end-1)
			}
			w.timers.RegisterEventTime(end, end-1+w.lateness)
		}
	}
	if d.Err() != nil {
		return d.Err()
	}
	if d.Len() != 0 {
		return fmt.Errorf("%d bytes after the end of the block", d.Len())
	}
	return nil
}

// State size estimate. The window's heap is mostly the backend's entries
// (a map slot with the boxed key, the entry, the accumulator and its
// cells) and its timers; keyBytes follows the boxed keys as windows come
// and go, the rest is read off the backend's counts. The gauge is
// refreshed on each watermark, every stateSyncEvery new windows and at
// restore, so the per-record path gains one integer addition only when it
// opens a window.
const (
	// windowEntryBytes: the backend's map slot (key, namespace, pointer),
	// its entry and the accumulator with its slice header.
	windowEntryBytes = 48 + 56 + 32
	// timerBytes: a timer in the backend's set and in its heap.
	timerBytes     = 48 + 32
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
	st := w.backend.Stats()
	if w.gap > 0 {
		return w.sessionStateBytes(st)
	}
	return st.Entries*(windowEntryBytes+int64(len(w.aggs))*cellBytes) + w.keyBytes + st.Timers*timerBytes
}

func (w *window) publishStateSize() {
	w.newWindows = 0
	if w.stateGauge != nil {
		w.stateGauge.Bytes.Store(w.stateBytes())
	}
}

// windowOpened accounts for a window opened with key k.
func (w *window) windowOpened(k any) {
	w.keyBytes += keyBytes(k)
	if w.newWindows++; w.newWindows >= stateSyncEvery {
		w.publishStateSize()
	}
}
