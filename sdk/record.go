package sdk

import (
	"fmt"
	"iter"
	"math"
	"reflect"
	"slices"
	"unsafe"

	"github.com/weir-stream/weir/dataflow"
)

// Record is an untyped record: named values in order. Use it as a
// function's input or output type to see every field, or to pass records
// through unchanged; use a struct with `weir` field tags to get typed
// fields instead (see the package documentation).
//
// Values are nil, bool, int64, float64, string, []any or map[string]any.
// A Record is immutable and cheap to copy.
type Record struct{ f dataflow.Fields }

// NewRecord returns a record with the fields of m, in name order. Go
// integer and float32 values are widened to int64 and float64.
func NewRecord(m map[string]any) Record {
	n := make(map[string]any, len(m))
	for k, v := range m {
		n[k] = normalizeValue(v)
	}
	return Record{dataflow.FieldsOf(n)}
}

// Get returns the value of field name, nil when there is none.
func (r Record) Get(name string) any { return r.f.Get(name) }

// Lookup returns the value of field name and whether the field exists.
func (r Record) Lookup(name string) (any, bool) { return r.f.Lookup(name) }

// Len is the number of fields.
func (r Record) Len() int { return r.f.Len() }

// All yields the fields in order.
func (r Record) All() iter.Seq2[string, any] { return r.f.All() }

// Map returns the fields as a new map.
func (r Record) Map() map[string]any { return r.f.Map() }

// With returns a copy of r with field name set to v (added last when r
// has no such field).
func (r Record) With(name string, v any) Record {
	shape, at := r.f.Shape().With([]string{name})
	vals := make([]any, shape.Len())
	copy(vals, r.f.Values())
	vals[at[0]] = normalizeValue(v)
	return Record{dataflow.NewFields(shape, vals)}
}

// String renders the record for messages.
func (r Record) String() string { return r.f.String() }

func normalizeValue(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

// fieldKind is how a struct field converts to and from a record value.
type fieldKind uint8

const (
	fkString fieldKind = iota + 1
	fkBool
	fkInt
	fkInt8
	fkInt16
	fkInt32
	fkInt64
	fkUint
	fkUint8
	fkUint16
	fkUint32
	fkUint64
	fkFloat32
	fkFloat64
	fkAny
	fkList
	fkMap
	fkStrings
)

type structField struct {
	name string
	off  uintptr
	kind fieldKind
}

// recordType maps a Go type to records: Record itself, or a struct whose
// exported fields map to record fields by their `weir` tag (the Go name
// without one; `weir:"-"` skips a field).
type recordType struct {
	typ      reflect.Type
	isRecord bool
	fields   []structField
	shape    *dataflow.Shape
}

var recordReflect = reflect.TypeFor[Record]()

func recordTypeOf[T any]() (*recordType, error) {
	t := reflect.TypeFor[T]()
	if t == recordReflect {
		return &recordType{typ: t, isRecord: true}, nil
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("record type %s: want sdk.Record or a struct", t)
	}
	rt := &recordType{typ: t}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("weir"); ok {
			if tag == "-" {
				continue
			}
			if tag != "" {
				name = tag
			}
		}
		k, ok := kindOf(f.Type)
		if !ok {
			return nil, fmt.Errorf("record type %s: field %s has type %s; want string, bool, an integer or float type, any, []any, []string or map[string]any",
				t, f.Name, f.Type)
		}
		if slices.Contains(names, name) {
			return nil, fmt.Errorf("record type %s: two fields map to %q", t, name)
		}
		names = append(names, name)
		rt.fields = append(rt.fields, structField{name: name, off: f.Offset, kind: k})
	}
	rt.shape = dataflow.MustShape(names...) // distinct: checked above
	return rt, nil
}

func kindOf(t reflect.Type) (fieldKind, bool) {
	switch t.Kind() {
	case reflect.String:
		return fkString, t == reflect.TypeFor[string]()
	case reflect.Bool:
		return fkBool, t == reflect.TypeFor[bool]()
	case reflect.Int:
		return fkInt, true
	case reflect.Int8:
		return fkInt8, true
	case reflect.Int16:
		return fkInt16, true
	case reflect.Int32:
		return fkInt32, true
	case reflect.Int64:
		return fkInt64, true
	case reflect.Uint:
		return fkUint, true
	case reflect.Uint8:
		return fkUint8, true
	case reflect.Uint16:
		return fkUint16, true
	case reflect.Uint32:
		return fkUint32, true
	case reflect.Uint64:
		return fkUint64, true
	case reflect.Float32:
		return fkFloat32, true
	case reflect.Float64:
		return fkFloat64, true
	case reflect.Interface:
		return fkAny, t.NumMethod() == 0
	case reflect.Slice:
		switch t {
		case reflect.TypeFor[[]any]():
			return fkList, true
		case reflect.TypeFor[[]string]():
			return fkStrings, true
		}
	case reflect.Map:
		return fkMap, t == reflect.TypeFor[map[string]any]()
	}
	return 0, false
}

// decoder reads records into T, remembering where T's fields are in the
// last shape it saw: the records of a stream share a shape, so a record is
// decoded without looking up names.
type decoder[T any] struct {
	rt        *recordType
	lastShape *dataflow.Shape
	pos       []int
}

func (d *decoder[T]) decode(f dataflow.Fields) (T, error) {
	var out T
	if d.rt.isRecord {
		*(*Record)(unsafe.Pointer(&out)) = Record{f}
		return out, nil
	}
	if s := f.Shape(); s != d.lastShape {
		d.pos = d.pos[:0]
		for _, sf := range d.rt.fields {
			d.pos = append(d.pos, s.Index(sf.name))
		}
		d.lastShape = s
	}
	base := unsafe.Pointer(&out)
	vals := f.Values()
	for i, sf := range d.rt.fields {
		p := d.pos[i]
		if p < 0 || vals[p] == nil {
			continue
		}
		if err := setField(unsafe.Add(base, sf.off), sf.kind, vals[p]); err != nil {
			return out, fmt.Errorf("field %q: %w", sf.name, err)
		}
	}
	return out, nil
}

func setField(p unsafe.Pointer, k fieldKind, v any) error {
	switch k {
	case fkString:
		if s, ok := v.(string); ok {
			*(*string)(p) = s
			return nil
		}
		return want("a string", v)
	case fkBool:
		if b, ok := v.(bool); ok {
			*(*bool)(p) = b
			return nil
		}
		return want("a bool", v)
	case fkFloat64, fkFloat32:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		default:
			return want("a number", v)
		}
		if k == fkFloat32 {
			*(*float32)(p) = float32(f)
		} else {
			*(*float64)(p) = f
		}
		return nil
	case fkAny:
		*(*any)(p) = v
		return nil
	case fkList:
		if l, ok := v.([]any); ok {
			*(*[]any)(p) = l
			return nil
		}
		return want("a list", v)
	case fkStrings:
		l, ok := v.([]any)
		if !ok {
			return want("a list of strings", v)
		}
		ss := make([]string, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("element %d: %w", i, want("a string", e))
			}
			ss[i] = s
		}
		*(*[]string)(p) = ss
		return nil
	case fkMap:
		if m, ok := v.(map[string]any); ok {
			*(*map[string]any)(p) = m
			return nil
		}
		return want("a map", v)
	}
	// Integers.
	var i int64
	switch x := v.(type) {
	case int64:
		i = x
	case float64:
		if x != math.Trunc(x) || math.Abs(x) >= 1<<63 {
			return want("an integer", v)
		}
		i = int64(x)
	default:
		return want("an integer", v)
	}
	lo, hi := intRange(k)
	if i < lo || (hi >= 0 && i > hi) {
		return fmt.Errorf("%d out of range", i)
	}
	switch k {
	case fkInt:
		*(*int)(p) = int(i)
	case fkInt8:
		*(*int8)(p) = int8(i)
	case fkInt16:
		*(*int16)(p) = int16(i)
	case fkInt32:
		*(*int32)(p) = int32(i)
	case fkInt64:
		*(*int64)(p) = i
	case fkUint:
		*(*uint)(p) = uint(i)
	case fkUint8:
		*(*uint8)(p) = uint8(i)
	case fkUint16:
		*(*uint16)(p) = uint16(i)
	case fkUint32:
		*(*uint32)(p) = uint32(i)
	case fkUint64:
		*(*uint64)(p) = uint64(i)
	}
	return nil
}

// intRange is the range of an integer kind that an int64 can reach; hi
// is -1 for no bound above.
func intRange(k fieldKind) (lo, hi int64) {
	switch k {
	case fkInt8:
		return math.MinInt8, math.MaxInt8
	case fkInt16:
		return math.MinInt16, math.MaxInt16
	case fkInt32:
		return math.MinInt32, math.MaxInt32
	case fkUint, fkUint64:
		return 0, -1
	case fkUint8:
		return 0, math.MaxUint8
	case fkUint16:
		return 0, math.MaxUint16
	case fkUint32:
		return 0, math.MaxUint32
	}
	return math.MinInt64, -1
}

func want(what string, v any) error {
	return fmt.Errorf("want %s, got %s", what, typeName(v))
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case int64, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

// encode turns v into record fields.
func encode[T any](rt *recordType, v *T) dataflow.Fields {
	if rt.isRecord {
		return (*Record)(unsafe.Pointer(v)).f
	}
	base := unsafe.Pointer(v)
	vals := make([]any, len(rt.fields))
	for i, sf := range rt.fields {
		vals[i] = getField(unsafe.Add(base, sf.off), sf.kind)
	}
	return dataflow.NewFields(rt.shape, vals)
}

func getField(p unsafe.Pointer, k fieldKind) any {
	switch k {
	case fkString:
		return *(*string)(p)
	case fkBool:
		return *(*bool)(p)
	case fkInt:
		return int64(*(*int)(p))
	case fkInt8:
		return int64(*(*int8)(p))
	case fkInt16:
		return int64(*(*int16)(p))
	case fkInt32:
		return int64(*(*int32)(p))
	case fkInt64:
		return *(*int64)(p)
	case fkUint:
		return uintValue(uint64(*(*uint)(p)))
	case fkUint8:
		return int64(*(*uint8)(p))
	case fkUint16:
		return int64(*(*uint16)(p))
	case fkUint32:
		return int64(*(*uint32)(p))
	case fkUint64:
		return uintValue(*(*uint64)(p))
	case fkFloat32:
		return float64(*(*float32)(p))
	case fkFloat64:
		return *(*float64)(p)
	case fkAny:
		return normalizeValue(*(*any)(p))
	case fkList:
		if l := *(*[]any)(p); l != nil {
			return l
		}
		return nil
	case fkStrings:
		ss := *(*[]string)(p)
		if ss == nil {
			return nil
		}
		l := make([]any, len(ss))
		for i, s := range ss {
			l[i] = s
		}
		return l
	case fkMap:
		if m := *(*map[string]any)(p); m != nil {
			return m
		}
		return nil
	}
	return nil
}

// uintValue keeps unsigned values exact: int64 when they fit, else
// float64 (records have no unsigned type).
func uintValue(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return float64(u)
}
