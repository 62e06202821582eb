package dataflow

import (
	"fmt"
	"iter"
	"slices"
	"strings"
)

// Fields is a record's value: named values in a fixed order. Values are
// JSON-like: nil, bool, int64, float64, string, []any and map[string]any.
//
// The names live in a Shape that the records of one source or operator
// share, so a record carries only its values: building one costs a single
// allocation, where a map costs a header, a group of slots and a hash per
// field (docs/design/0004-record-fields.md). A Fields is immutable once
// built and cheap to copy, so records share it freely across operators and
// goroutines; nested lists and maps are shared too and must not be changed.
//
// The zero Fields is a record without a value (no fields at all), which
// reads like an empty one.
type Fields struct {
	shape *Shape
	vals  []any
}

// Shape is an ordered list of distinct field names.
type Shape struct {
	names []string
	index map[string]int // for shapes wider than linearScanMax
}

// linearScanMax is the widest shape looked up by comparing names one by
// one: short strings compare faster than they hash.
const linearScanMax = 8

var emptyShape = &Shape{}

// NewShape returns the shape with names in order, or an error naming a
// duplicate.
func NewShape(names ...string) (*Shape, error) {
	s := &Shape{names: slices.Clone(names)}
	if len(names) > linearScanMax {
		s.index = make(map[string]int, len(names))
		for i, n := range names {
			if _, dup := s.index[n]; dup {
				return nil, fmt.Errorf("field %q appears twice", n)
			}
			s.index[n] = i
		}
		return s, nil
	}
	for i, n := range names {
		if slices.Contains(names[:i], n) {
			return nil, fmt.Errorf("field %q appears twice", n)
		}
	}
	return s, nil
}

// MustShape is NewShape for names known to be distinct (constants, or
// names already checked); it panics on a duplicate.
func MustShape(names ...string) *Shape {
	s, err := NewShape(names...)
	if err != nil {
		panic("dataflow.MustShape: " + err.Error())
	}
	return s
}

// Len is the number of names.
func (s *Shape) Len() int { return len(s.names) }

// Name returns the i-th name.
func (s *Shape) Name(i int) string { return s.names[i] }

// Index returns the position of name, or -1.
func (s *Shape) Index(name string) int {
	if s.index != nil {
		if i, ok := s.index[name]; ok {
			return i
		}
		return -1
	}
	for i, n := range s.names {
		if n == name {
			return i
		}
	}
	return -1
}

// sameNames reports whether the shape's names are exactly names.
func (s *Shape) sameNames(names []string) bool {
	return slices.Equal(s.names, names)
}

// NewFields returns the fields of shape s with values vals, in the shape's
// order. It takes vals over: the caller must not change it afterwards. It
// panics when the lengths differ, a programming error.
func NewFields(s *Shape, vals []any) Fields {
	if s == nil {
		s = emptyShape
	}
	if len(vals) != len(s.names) {
		panic(fmt.Sprintf("dataflow.NewFields: %d values for %d names", len(vals), len(s.names)))
	}
	return Fields{shape: s, vals: vals}
}

// FieldsOf returns the fields of m with names in sorted order; a nil map
// gives the zero Fields. It copies m's top level.
func FieldsOf(m map[string]any) Fields {
	if m == nil {
		return Fields{}
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	vals := make([]any, len(names))
	for i, k := range names {
		vals[i] = m[k]
	}
	return Fields{shape: &Shape{names: names, index: indexOf(names)}, vals: vals}
}

func indexOf(names []string) map[string]int {
	if len(names) <= linearScanMax {
		return nil
	}
	idx := make(map[string]int, len(names))
	for i, n := range names {
		idx[n] = i
	}
	return idx
}

// IsZero reports whether f is the zero Fields: a record without a value.
func (f Fields) IsZero() bool { return f.shape == nil }

// Shape returns f's shape (an empty one for the zero Fields).
func (f Fields) Shape() *Shape {
	if f.shape == nil {
		return emptyShape
	}
	return f.shape
}

// Len is the number of fields.
func (f Fields) Len() int { return len(f.vals) }

// Name returns the name of the i-th field.
func (f Fields) Name(i int) string { return f.shape.names[i] }

// Value returns the value of the i-th field.
func (f Fields) Value(i int) any { return f.vals[i] }

// Values returns the values in order. The slice is f's own: read only.
func (f Fields) Values() []any { return f.vals }

// Get returns the value of field name, nil when there is none.
func (f Fields) Get(name string) any {
	v, _ := f.Lookup(name)
	return v
}

// Lookup returns the value of field name and whether the field exists.
func (f Fields) Lookup(name string) (any, bool) {
	if f.shape == nil {
		return nil, false
	}
	if i := f.shape.Index(name); i >= 0 {
		return f.vals[i], true
	}
	return nil, false
}

// All yields the fields in order.
func (f Fields) All() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for i, v := range f.vals {
			if !yield(f.shape.names[i], v) {
				return
			}
		}
	}
}

// Map returns the fields as a new map (nil for the zero Fields): the
// environment of a general expression, and a convenient form for tests.
func (f Fields) Map() map[string]any {
	if f.shape == nil {
		return nil
	}
	m := make(map[string]any, len(f.vals))
	for i, v := range f.vals {
		m[f.shape.names[i]] = v
	}
	return m
}

// String renders the fields in order, for messages: {ip: 10.0.0.1, count: 3}.
func (f Fields) String() string { return f.format("{", "%s: %v") }

// GoString prints the fields with Go syntax for their values, so %#v shows
// every value in full (fmt would print the shape's address).
func (f Fields) GoString() string {
	if f.shape == nil {
		return "dataflow.Fields{}"
	}
	return f.format("dataflow.Fields{", "%q: %#v")
}

func (f Fields) format(open, item string) string {
	var b strings.Builder
	b.WriteString(open)
	for i, v := range f.vals {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, item, f.shape.names[i], v)
	}
	b.WriteByte('}')
	return b.String()
}

// ShapeCache hands out shapes for sequences of names, reusing a recent one
// when the names repeat, as they do from record to record of one stream. It
// keeps a few shapes, so a stream that alternates between shapes (a union)
// reuses them too. Not safe for concurrent use.
type ShapeCache struct {
	recent [4]*Shape
	next   int
}

// Shape returns a shape with exactly names, which it does not keep (it
// copies them when it makes a new shape), or an error naming a duplicate.
func (c *ShapeCache) Shape(names []string) (*Shape, error) {
	for _, s := range c.recent {
		if s != nil && s.sameNames(names) {
			return s, nil
		}
	}
	s, err := NewShape(names...)
	if err != nil {
		return nil, err
	}
	c.recent[c.next] = s
	c.next = (c.next + 1) % len(c.recent)
	return s, nil
}

// With returns the shape of s with names set: s's names in order, then
// those of names that s lacks, in order; and where each of names is in it.
// names must be distinct.
func (s *Shape) With(names []string) (*Shape, []int) {
	at := make([]int, len(names))
	out := slices.Clone(s.names)
	for i, n := range names {
		if j := s.Index(n); j >= 0 {
			at[i] = j
			continue
		}
		at[i] = len(out)
		out = append(out, n)
	}
	if len(out) == len(s.names) {
		return s, at
	}
	return &Shape{names: out, index: indexOf(out)}, at
}
