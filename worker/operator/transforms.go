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
	prog *expr.Program
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
		p, err := compile(fmt.Sprintf("%s field %q", kind, f.Name), f.Expr, expr.Any)
		if err != nil {
			return nil, err
		}
		out = append(out, field{f.Name, p})
	}
	return out, nil
}

// mapOp adds or replaces fields. Every expression sees the input record, not
// the fields set before it in the same map (like the expressions of one SQL
// SELECT).
type mapOp struct {
	base
	fields []field
	set    extender
	rec    dataflow.Record
}

func newMap(b base, fs spec.Fields) (*mapOp, error) {
	f, err := compileFields("map", fs)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(f))
	for i := range f {
		names[i] = f[i].name
	}
	return &mapOp{base: b, fields: f, set: extender{names: names}}, nil
}

func (m *mapOp) Process(r *dataflow.Record, out dataflow.Output) error {
	shape, at := m.set.shape(r.Fields)
	vals := make([]any, shape.Len())
	copy(vals, r.Fields.Values())
	env := recordEnv{fields: r.Fields}
	for i, f := range m.fields {
		v, err := env.eval(f.prog)
		if err != nil {
			return m.fail(r, fmt.Errorf("field %q: %w", f.name, err))
		}
		vals[at[i]] = v
	}
	return emitWith(&m.rec, r, dataflow.NewFields(shape, vals), out)
}

// extender gives the shape of a record's fields with some names set (added
// or replaced), and where each goes. It keeps the answer for the last input
// shape, which nearly every record shares.
type extender struct {
	names   []string
	in, out *dataflow.Shape
	at      []int
}

func (x *extender) shape(f dataflow.Fields) (*dataflow.Shape, []int) {
	if s := f.Shape(); s != x.in {
		x.in = s
		x.out, x.at = s.With(x.names)
	}
	return x.out, x.at
}

// emitWith emits a copy of r with other fields through a reusable record.
func emitWith(dst *dataflow.Record, r *dataflow.Record, fields dataflow.Fields, out dataflow.Output) error {
	*dst = *r
	dst.Fields = fields
	err := out.Emit(dst)
	*dst = dataflow.Record{}
	return err
}

// selectOp keeps exactly the given fields.
type selectOp struct {
	base
	fields []field
	shape  *dataflow.Shape
	rec    dataflow.Record
}

func newSelect(b base, fs spec.Fields) (*selectOp, error) {
	f, err := compileFields("select", fs)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(f))
	for i := range f {
		names[i] = f[i].name
	}
	return &selectOp{base: b, fields: f, shape: dataflow.MustShape(names...)}, nil // compileFields rejects duplicates
}

func (s *selectOp) Process(r *dataflow.Record, out dataflow.Output) error {
	vals := make([]any, len(s.fields))
	env := recordEnv{fields: r.Fields}
	for i, f := range s.fields {
		v, err := env.eval(f.prog)
		if err != nil {
			return s.fail(r, fmt.Errorf("field %q: %w", f.name, err))
		}
		vals[i] = v
	}
	return emitWith(&s.rec, r, dataflow.NewFields(s.shape, vals), out)
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
	ok, err := f.prog.EvalBool(r.Fields)
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
	prog  *expr.Program
	split bool
	sep   string
	set   extender // sets field As
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
	op := &flatMapOp{base: b, split: split, sep: f.Separator, set: extender{names: []string{as}}}
	var err error
	if split {
		op.prog, err = compile("flat_map split", f.Split, expr.String)
	} else {
		op.prog, err = compile("flat_map explode", f.Explode, expr.List)
	}
	if err != nil {
		return nil, err
	}
	return op, nil
}

func (f *flatMapOp) Process(r *dataflow.Record, out dataflow.Output) error {
	in := r.Fields
	v, err := f.prog.Eval(in)
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

func (f *flatMapOp) emit(r *dataflow.Record, in dataflow.Fields, v any, out dataflow.Output) error {
	shape, at := f.set.shape(in)
	vals := make([]any, shape.Len())
	copy(vals, in.Values())
	vals[at[0]] = v
	return emitWith(&f.rec, r, dataflow.NewFields(shape, vals), out)
}

// keyByOp sets Record.Key; the fields are unchanged.
type keyByOp struct {
	base
	prog *expr.Program
	rec  dataflow.Record
}

func newKeyBy(b base, k *spec.KeyBy) (*keyByOp, error) {
	p, err := compile("key_by", k.Expr, expr.Any)
	if err != nil {
		return nil, err
	}
	return &keyByOp{base: b, prog: p}, nil
}

func (k *keyByOp) Process(r *dataflow.Record, out dataflow.Output) error {
	v, err := k.prog.Eval(r.Fields)
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
