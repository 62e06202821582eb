package operator

import (
	"encoding/binary"
	"fmt"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// running is a non-windowed aggregate per key: it folds each record into
// its key's aggregate cells (the window's: aggregate.go) and emits the
// key's updated result at once, the record's event time and key kept, so
// its output is a changelog of one row per key, as a GROUP BY without a
// window is in Flink SQL or an aggregate into a KTable in Kafka Streams.
// The cells live in the keyed state backend, with an optional time to
// live in processing time that forgets idle keys.
type running struct {
	base
	keyedState
	keyField string
	aggs     []aggregate
	hasExpr  bool
	shape    *dataflow.Shape
	cells    *state.Value[[]cell]
	vals     []any
}

const runningState = "cells"

// cleanupPerRecord is how many expired keys a record's call looks at when
// the node has a TTL: enough to keep up with one expiry per record.
const cleanupPerRecord = 2

func newRunning(b base, r *spec.Running, keyField string, ctx *dataflow.Context) (*running, error) {
	op := &running{base: b, keyedState: newKeyed("running", ctx), keyField: keyField}
	names := map[string]bool{keyField: true}
	for _, a := range r.Aggregates {
		if names[a.Name] || a.Name == "" {
			return nil, fmt.Errorf("running: aggregate name %q is empty or used twice (the key is %q)", a.Name, keyField)
		}
		names[a.Name] = true
		fn, arg, err := spec.ParseAggregate(a.Expr)
		if err != nil {
			return nil, fmt.Errorf("running: %w", err)
		}
		f, ok := aggFnNamed(fn)
		if !ok || !runningAggregate(f) {
			return nil, fmt.Errorf("running: aggregate %q: %s is not a running aggregate", a.Name, fn)
		}
		ag := aggregate{name: a.Name, fn: f, none: arg == ""}
		if arg != "" {
			if ag.arg, err = compile(fmt.Sprintf("running aggregate %q", a.Name), arg, expr.Any); err != nil {
				return nil, err
			}
			op.hasExpr = true
		}
		op.aggs = append(op.aggs, ag)
	}
	if len(op.aggs) == 0 {
		return nil, fmt.Errorf("running: no aggregates")
	}
	if r.TTL < 0 {
		return nil, fmt.Errorf("running: ttl %s is negative", r.TTL.D())
	}
	op.vals = make([]any, len(op.aggs))
	shape := []string{keyField}
	for _, a := range op.aggs {
		shape = append(shape, a.name)
	}
	op.shape = dataflow.MustShape(shape...) // distinct: checked above
	var err error
	op.cells, err = state.NewValue(op.backend, state.Descriptor{Name: runningState, Kind: state.KindAggregating, TTL: state.TTL{Duration: r.TTL.D()}},
		cellsSerializer{aggs: op.aggs})
	if err != nil {
		return nil, fmt.Errorf("running: %w", err)
	}
	return op, nil
}

// runningAggregate reports whether fn's cell is one cellsSerializer
// encodes: the aggregates a running node takes (spec.RunningAggregates).
func runningAggregate(fn aggFn) bool {
	switch fn {
	case aggCount, aggSum, aggMin, aggMax, aggAvg:
		return true
	}
	return false
}

// Open implements dataflow.Operator.
func (o *running) Open(ctx *dataflow.Context) error {
	if err := o.base.Open(ctx); err != nil {
		return err
	}
	o.open(ctx)
	return nil
}

// Process folds r into its key's cells and emits the key's result.
func (o *running) Process(r *dataflow.Record, out dataflow.Output) error {
	key, err := normKey(r.Key)
	if err != nil {
		return o.fail(r, fmt.Errorf("running: %w (key the stream with key_by)", err))
	}
	defer clear(o.vals)
	if o.hasExpr {
		env := recordEnv{fields: r.Fields}
		for i := range o.aggs {
			a := &o.aggs[i]
			if a.none {
				continue
			}
			v, err := env.eval(a.arg)
			if err != nil {
				return o.fail(r, fmt.Errorf("running aggregate %q: %w", a.name, err))
			}
			if err := checkArg(a.fn, v); err != nil {
				return o.fail(r, fmt.Errorf("running aggregate %q: %s %w", a.name, a.fn, err))
			}
			o.vals[i] = v
		}
	}
	o.backend.SetCurrentKey(key)
	cells, ok, err := o.cells.Get(0)
	if err != nil {
		return err
	}
	if !ok {
		cells = make([]cell, len(o.aggs))
	}
	// Refuse a record before any cell changes, so it leaves no partial
	// update behind.
	for i := range o.aggs {
		if fn := o.aggs[i].fn; (fn == aggMin || fn == aggMax) && cells[i].conflicts(o.vals[i]) {
			return o.fail(r, fmt.Errorf("running aggregate %q: %s cannot compare %s with %s",
				o.aggs[i].name, fn, typeName(o.vals[i]), typeName(cells[i].v)))
		}
	}
	for i := range cells {
		cells[i].add(o.aggs[i].fn, o.vals[i], r.Time)
	}
	if err := o.cells.Put(0, cells); err != nil {
		return err
	}
	o.backend.Cleanup(cleanupPerRecord)
	vals := make([]any, 1+len(o.aggs))
	vals[0] = key
	for i := range o.aggs {
		vals[1+i] = cells[i].result(o.aggs[i].fn)
	}
	res := dataflow.Record{Key: key, Time: r.Time, Fields: dataflow.NewFields(o.shape, vals)}
	return out.Emit(&res)
}

// ProcessWatermark forwards the watermark and refreshes the state size.
func (o *running) ProcessWatermark(wm int64, out dataflow.Output) error {
	o.publish()
	return out.EmitWatermark(wm)
}

// cellsSerializer encodes a key's cells in the window's cell format
// (appendCell), preceded by their number: a restore into a node whose
// aggregates changed in number is refused rather than misread.
type cellsSerializer struct{ aggs []aggregate }

func (s cellsSerializer) Append(buf []byte, cs []cell) ([]byte, error) {
	buf = binary.AppendUvarint(buf, uint64(len(cs)))
	for i := range cs {
		var err error
		if buf, err = appendCell(buf, s.aggs[i].fn, &cs[i]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func (s cellsSerializer) Decode(b []byte) ([]cell, error) {
	d := state.NewReader(b)
	n := d.Uvarint()
	if d.Err() != nil {
		return nil, d.Err()
	}
	if n != uint64(len(s.aggs)) {
		return nil, fmt.Errorf("%d aggregates in the snapshot, %d in the node: the aggregates of a running node cannot change across a restore", n, len(s.aggs))
	}
	cs := make([]cell, n)
	for i := range cs {
		if err := decodeCell(d, s.aggs[i].fn, &cs[i]); err != nil {
			return nil, fmt.Errorf("aggregate %q: %w", s.aggs[i].name, err)
		}
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the cells", d.Len())
	}
	return cs, nil
}
