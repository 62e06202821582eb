package operator

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// topN keeps, per key and window, the N records that come first in the
// order of an expression, and emits them ranked 1 to N when the watermark
// passes the window's end: Flink SQL's ROW_NUMBER() OVER (PARTITION BY
// window, key ORDER BY e) <= N. The windows are its own tumbling ones, or
// those of the window whose results it reads, by their window_end.
//
// State per key and window (namespace: the window's end) is the list of
// the best N so far, sorted, each record kept encoded (dataflow's record
// codec) with its order value: a record that does not beat the Nth is
// dropped at once, so the state is at most N records per key and window.
// Ties in the order value are broken by the encoded records' bytes, a
// fixed order of their contents, so the output does not depend on the
// order in which records of one key arrive from several upstream
// subtasks. An event-time timer at end−1 fires the window.
type topN struct {
	base
	keyedState
	n        int
	desc     bool
	order    *expr.Program
	size     int64 // own tumbling windows; 0: the input's window_end
	rankAs   string
	lateSide bool
	wm       int64
	top      *state.Value[[]topEntry]
	shapes   dataflow.ShapeCache
	names    []string
	buf      []byte
}

// topEntry is one kept record: its order value and its fields, encoded.
type topEntry struct {
	ord any
	enc []byte
}

const topNState = "top"

func newTopN(b base, t *spec.TopN, ctx *dataflow.Context) (*topN, error) {
	op := &topN{base: b, keyedState: newKeyed("top_n", ctx), n: t.N, rankAs: t.RankAs, wm: math.MinInt64}
	if t.N < 1 || t.N > spec.MaxTopN {
		return nil, fmt.Errorf("top_n: n %d: want 1 to %d", t.N, spec.MaxTopN)
	}
	e, desc := spec.ParseOrderBy(t.OrderBy)
	op.desc = desc
	var err error
	if op.order, err = compile("top_n order_by", e, expr.Any); err != nil {
		return nil, err
	}
	if t.Tumbling != 0 {
		if op.size, err = span("top_n tumbling", t.Tumbling); err != nil {
			return nil, err
		}
	}
	if op.rankAs == "" {
		op.rankAs = spec.DefaultRankAs
	}
	switch t.Late {
	case "", "drop":
	case "side_output":
		op.lateSide = true
	default:
		return nil, fmt.Errorf("top_n: late %q: want drop or side_output", t.Late)
	}
	op.top, err = state.NewValue[[]topEntry](op.backend, state.Descriptor{Name: topNState}, topSerializer{})
	if err != nil {
		return nil, fmt.Errorf("top_n: %w", err)
	}
	return op, nil
}

// Open implements dataflow.Operator.
func (o *topN) Open(ctx *dataflow.Context) error {
	if err := o.base.Open(ctx); err != nil {
		return err
	}
	o.open(ctx)
	return nil
}

// compare orders entries: by order value (state.CompareKeys: null first,
// numbers, then strings), reversed for DESC, then by encoded bytes.
func (o *topN) compare(a, b *topEntry) int {
	c := state.CompareKeys(a.ord, b.ord)
	if o.desc {
		c = -c
	}
	if c != 0 {
		return c
	}
	return bytes.Compare(a.enc, b.enc)
}

// windowEnd is the end of the window r belongs to.
func (o *topN) windowEnd(r *dataflow.Record) (int64, error) {
	if o.size > 0 {
		return r.Time - mod(r.Time, o.size) + o.size, nil
	}
	v, ok := r.Fields.Lookup(FieldWindowEnd)
	if !ok {
		return 0, errors.New("top_n: record has no window_end field: without tumbling, top_n ranks a window's results")
	}
	end, ok := v.(int64)
	if !ok || end >= maxEventTime || end <= -maxEventTime {
		return 0, fmt.Errorf("top_n: window_end %v is not an event time", v)
	}
	return end, nil
}

// Process keeps r when it is among its key and window's best N so far.
func (o *topN) Process(r *dataflow.Record, out dataflow.Output) error {
	if err := eventTime("top_n", r); err != nil {
		return o.fail(r, err)
	}
	key, err := normKey(r.Key)
	if err != nil {
		return o.fail(r, fmt.Errorf("top_n: %w (key the stream with key_by)", err))
	}
	end, err := o.windowEnd(r)
	if err != nil {
		return o.fail(r, err)
	}
	if end-1 <= lateAgainst(o.wm, r) {
		if o.lateSide {
			return out.EmitSide(LateTag, r)
		}
		if m := o.metrics(); m != nil {
			m.DroppedLate.Add(1)
		}
		return nil
	}
	env := recordEnv{fields: r.Fields}
	ord, err := env.eval(o.order)
	if err != nil {
		return o.fail(r, fmt.Errorf("top_n order_by: %w", err))
	}
	if ord, err = orderValue(ord); err != nil {
		return o.fail(r, fmt.Errorf("top_n order_by: %w", err))
	}
	o.backend.SetCurrentKey(key)
	list, ok, err := o.top.Get(end)
	if err != nil {
		return err
	}
	if !ok {
		o.backend.Timers().RegisterEventTime(end, end-1)
	}
	e := topEntry{ord: ord}
	if len(list) == o.n {
		// Most records do not make the cut: tell without encoding them.
		c := state.CompareKeys(ord, list[o.n-1].ord)
		if o.desc {
			c = -c
		}
		if c > 0 {
			return nil
		}
	}
	el := dataflow.Element{Kind: dataflow.KindRecord, Record: dataflow.Record{Fields: r.Fields}}
	if o.buf, err = dataflow.AppendElement(o.buf[:0], &el); err != nil {
		return o.fail(r, fmt.Errorf("top_n: %w", err))
	}
	e.enc = slices.Clone(o.buf)
	i, _ := slices.BinarySearchFunc(list, &e, func(a topEntry, b *topEntry) int { return o.compare(&a, b) })
	if i >= o.n {
		return nil
	}
	list = slices.Insert(list, i, e)
	if len(list) > o.n {
		list[o.n] = topEntry{}
		list = list[:o.n]
	}
	return o.top.Put(end, list)
}

// orderValue checks an order value: null, a bool, a number (not NaN) or
// a string, which state.CompareKeys orders.
func orderValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, string:
		return v, nil
	case float64:
		if math.IsNaN(x) {
			return nil, errors.New("value is NaN")
		}
		return v, nil
	case int, int8, int16, int32, uint, uint8, uint16, uint32, float32:
		return orderValue(expr.Normalize(v))
	}
	return nil, fmt.Errorf("want a number, string, bool or null to order by, got %s", typeName(v))
}

// ProcessWatermark emits the windows whose end the watermark reached, in
// order of end, then key, then rank, and forwards it. A watermark that
// does not advance is ignored.
func (o *topN) ProcessWatermark(wm int64, out dataflow.Output) error {
	if wm <= o.wm {
		return nil
	}
	o.wm = wm
	err := o.backend.Timers().AdvanceWatermark(wm, func(t state.Timer) error { return o.fire(t.Key, t.Namespace, out) })
	if err != nil {
		return err
	}
	o.publish()
	return out.EmitWatermark(wm)
}

func (o *topN) fire(key any, end int64, out dataflow.Output) error {
	list, ok, err := o.top.Get(end)
	if err != nil || !ok {
		return err
	}
	if err := o.top.Delete(end); err != nil {
		return err
	}
	for i, e := range list {
		var in dataflow.Fields
		err := dataflow.DecodeElements(e.enc, func(el *dataflow.Element) error {
			in = el.Record.Fields
			return nil
		})
		if err != nil {
			return fmt.Errorf("top_n: key %v window end %d: %w", key, end, err)
		}
		f, err := o.ranked(in, end, int64(i+1))
		if err != nil {
			return fmt.Errorf("top_n: key %v window end %d: %w", key, end, err)
		}
		rec := dataflow.Record{Key: key, Time: end - 1, Fields: f}
		if err := out.Emit(&rec); err != nil {
			return err
		}
	}
	return nil
}

// ranked is in with the window (own windows only) and the rank added or
// replaced.
func (o *topN) ranked(in dataflow.Fields, end, rank int64) (dataflow.Fields, error) {
	o.names = o.names[:0]
	vals := make([]any, 0, in.Len()+3)
	for name, v := range in.All() {
		if name == o.rankAs || o.size > 0 && (name == FieldWindowStart || name == FieldWindowEnd) {
			continue
		}
		o.names = append(o.names, name)
		vals = append(vals, v)
	}
	if o.size > 0 {
		o.names = append(o.names, FieldWindowStart, FieldWindowEnd)
		vals = append(vals, end-o.size, end)
	}
	o.names = append(o.names, o.rankAs)
	vals = append(vals, rank)
	s, err := o.shapes.Shape(o.names)
	if err != nil {
		return dataflow.Fields{}, err
	}
	return dataflow.NewFields(s, vals), nil
}

// topSerializer encodes a key and window's list: the number of entries,
// then each entry's order value (the window's value encoding) and its
// encoded record.
type topSerializer struct{}

func (topSerializer) Append(buf []byte, list []topEntry) ([]byte, error) {
	buf = binary.AppendUvarint(buf, uint64(len(list)))
	for _, e := range list {
		buf = state.AppendKey(buf, e.ord)
		buf = binary.AppendUvarint(buf, uint64(len(e.enc)))
		buf = append(buf, e.enc...)
	}
	return buf, nil
}

func (topSerializer) Decode(b []byte) ([]topEntry, error) {
	d := state.NewReader(b)
	n := d.Count(2)
	list := make([]topEntry, 0, n)
	for range n {
		ord := d.Key()
		enc := slices.Clone(d.Next(d.Count(1)))
		if d.Err() != nil {
			return nil, d.Err()
		}
		if _, err := orderValue(ord); err != nil {
			return nil, err
		}
		if err := dataflow.DecodeElements(enc, func(*dataflow.Element) error { return nil }); err != nil {
			return nil, err
		}
		list = append(list, topEntry{ord: ord, enc: enc})
	}
	if d.Err() != nil {
		return nil, d.Err()
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the list", d.Len())
	}
	return list, nil
}
