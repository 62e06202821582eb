package operator

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
)

type field struct {
	name string
	evaluator
}

func compileFields(kind string, fs spec.Fields) ([]field, error) {
	if len(fs) == 0 {
		return nil, fmt.Errorf("%s: no fields", kind)
	}
	out := make([]field, 0, len(fs))
	seen := make(map[string]bool, len(fs))
	for _, f := range fs {
		if f.Name == "" {
			return nil, fmt.Errorf("%s: field with an empty name", kind)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("%s: field %q set twice", kind, f.Name)
		}
		seen[f.Name] = true
		e, err := newEvaluator(fmt.Sprintf("%s field %q", kind, f.Name), f.Expr, expr.Any)
		if err != nil {
			return nil, err
		}
		out = append(out, field{f.Name, e})
	}
	return out, nil
}

// mapOp adds or replaces fields. Every expression sees the input record, not
// the fields set before it in the same map (like the expressions of one SQL
// SELECT).
type mapOp struct {
	base
	fields []field
	rec    dataflow.Record
}

func newMap(b base, fs spec.Fields) (*mapOp, error) {
	f, err := compileFields("map", fs)
	if err != nil {
		return nil, err
	}
	return &mapOp{base: b, fields: f}, nil
}

func (m *mapOp) Process(r *dataflow.Record, out dataflow.Output) error {
	in := fieldsOf(r)
	fields := make(map[string]any, len(in)+len(m.fields))
	for k, v := range in {
		fields[k] = v
	}
	for _, f := range m.fields {
		v, err := f.eval(in)
		if err != nil {
			return m.fail(r, fmt.Errorf("field %q: %w", f.name, err))
		}
		fields[f.name] = v
	}
	return emitWith(&m.rec, r, fields, out)
}

// emitWith emits a copy of r with other fields through a reusable record.
func emitWith(dst *dataflow.Record, r *dataflow.Record, fields map[string]any, out dataflow.Output) error {
	*dst = *r
	dst.Fields = fields
	err := out.Emit(dst)
	dst.Fields = nil
	dst.Key = nil
	return err
}

// selectOp keeps exactly the given fields.
type selectOp struct {
	base
	fields []field
	rec    dataflow.Record
}

func newSelect(b base, fs spec.Fields) (*selectOp, error) {
	f, err := compileFields("select", fs)
	if err != nil {
		return nil, err
	}
	return &selectOp{base: b, fields: f}, nil
}

func (s *selectOp) Process(r *dataflow.Record, out dataflow.Output) error {
	in := fieldsOf(r)
	fields := make(map[string]any, len(s.fields))
	for _, f := range s.fields {
		v, err := f.eval(in)
		if err != nil {
			return s.fail(r, fmt.Errorf("field %q: %w", f.name, err))
		}
		fields[f.name] = v
	}
	return emitWith(&s.rec, r, fields, out)
}

// filterOp keeps the records for which its expression is true.
type filterOp struct {
	base
	prog *expr.Program
}

func newFilter(b base, src string) (*filterOp, error) {
	p, err := compile("filter", src, expr.Bool)
	if err != nil {
		return nil, err
	}
	return &filterOp{base: b, prog: p}, nil
}

func (f *filterOp) Process(r *dataflow.Record, out dataflow.Output) error {
	ok, err := f.prog.EvalBool(fieldsOf(r))
	if err != nil {
		return f.fail(r, fmt.Errorf("filter: %w", err))
	}
	if !ok {
		return nil
	}
	return out.Emit(r)
}

// flatMapOp emits one record per element of a list (explode) or per part of
// a string (split), with the element in field As. A nil list or string
// yields no record.
type flatMapOp struct {
	base
	evaluator
	split bool
	sep   string
	as    string
	rec   dataflow.Record
}

func newFlatMap(b base, f *spec.FlatMap) (*flatMapOp, error) {
	explode, split := strings.TrimSpace(f.Explode) != "", strings.TrimSpace(f.Split) != ""
	if explode == split {
		return nil, errors.New("flat_map: set exactly one of explode and split")
	}
	if f.Separator != "" && !split {
		return nil, errors.New("flat_map: separator applies to split only")
	}
	as := f.As
	if as == "" {
		as = "value"
	}
	op := &flatMapOp{base: b, split: split, sep: f.Separator, as: as}
	var err error
	if split {
		op.evaluator, err = newEvaluator("flat_map split", f.Split, expr.String)
	} else {
		op.evaluator, err = newEvaluator("flat_map explode", f.Explode, expr.List)
	}
	if err != nil {
		return nil, err
	}
	return op, nil
}

func (f *flatMapOp) Process(r *dataflow.Record, out dataflow.Output) error {
	in := fieldsOf(r)
	v, err := f.eval(in)
	if err != nil {
		return f.fail(r, fmt.Errorf("flat_map: %w", err))
	}
	if v == nil {
		return nil
	}
	if f.split {
		s, ok := v.(string)
		if !ok {
			return f.fail(r, fmt.Errorf("flat_map: split wants a string, got %s", typeName(v)))
		}
		var parts []string
		if f.sep == "" {
			parts = strings.Fields(s)
		} else {
			parts = strings.Split(s, f.sep)
		}
		for _, p := range parts {
			if err := f.emit(r, in, p, out); err != nil {
				return err
			}
		}
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return f.fail(r, fmt.Errorf("flat_map: explode wants a list, got %s", typeName(v)))
	}
	for _, e := range list {
		if err := f.emit(r, in, e, out); err != nil {
			return err
		}
	}
	return nil
}

func (f *flatMapOp) emit(r *dataflow.Record, in map[string]any, v any, out dataflow.Output) error {
	fields := make(map[string]any, len(in)+1)
	for k, x := range in {
		fields[k] = x
	}
	fields[f.as] = v
	return emitWith(&f.rec, r, fields, out)
}

// keyByOp sets Record.Key; the fields are unchanged.
type keyByOp struct {
	base
	evaluator
	rec dataflow.Record
}

func newKeyBy(b base, k *spec.KeyBy) (*keyByOp, error) {
	e, err := newEvaluator("key_by", k.Expr, expr.Any)
	if err != nil {
		return nil, err
	}
	return &keyByOp{base: b, evaluator: e}, nil
}

func (k *keyByOp) Process(r *dataflow.Record, out dataflow.Output) error {
	v, err := k.eval(fieldsOf(r))
	if err != nil {
		return k.fail(r, fmt.Errorf("key_by: %w", err))
	}
	if err := checkKey(v); err != nil {
		return k.fail(r, fmt.Errorf("key_by: %w", err))
	}
	k.rec = *r
	k.rec.Key = v
	err = out.Emit(&k.rec)
	k.rec = dataflow.Record{}
	return err
}

// checkKey accepts the key types that compare by value: keyed state and
// window results need them.
func checkKey(v any) error {
	_, err := normKey(v)
	return err
}

// normKey returns a valid key as a record value (Go integers as int64).
func normKey(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, int64, bool:
		return v, nil
	case float64:
		if math.IsNaN(x) {
			return nil, errors.New("key is NaN")
		}
		return v, nil
	case int, int8, int16, int32, uint, uint8, uint16, uint32, float32:
		return normKey(expr.Normalize(v))
	}
	return nil, fmt.Errorf("key must be a string, number, bool or null, got %s", typeName(v))
}

// union passes records through; the task unions its inputs.
type union struct{ base }

func (u *union) Process(r *dataflow.Record, out dataflow.Output) error { return out.Emit(r) }

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case int64, float64, int:
		return "number"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}
