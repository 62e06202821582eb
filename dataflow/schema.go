package dataflow

import (
	"fmt"
	"slices"
	"strconv"
)

// Schema is the field types a source declares (its spec `schema`), checked
// on every record the source decodes, so that a value of another type never
// reaches an expression type-checked against the declaration: the JSON
// string "404" in an int field would otherwise compare unequal to 404 and
// pass `status != 404`. The rules (docs/spec.md, "Schemas at run time"):
//
//   - every declared field must be present; undeclared fields pass as they
//     are;
//   - a value must have its declared type: int is an int64, float a float64
//     or an int64 (converted: JSON does not tell 2 from 2.0), string, bool,
//     list ([]any) and map (map[string]any) likewise; null is refused for
//     all of these. Nothing else is converted (a string "404" is not an
//     int, 2.5 is not an int);
//   - any takes any value, null included.
//
// A record that breaks a rule is an error for the source's on_error. A
// Schema keeps per-shape state: use one per goroutine.
type Schema struct {
	names []string
	types []fieldType
	// For the last shape seen: where each declared field is (-1: absent).
	shape *Shape
	at    []int
}

type fieldType uint8

const (
	typeAny fieldType = iota
	typeString
	typeInt
	typeFloat
	typeBool
	typeList
	typeMap
)

var fieldTypes = map[string]fieldType{
	"any": typeAny, "string": typeString, "int": typeInt, "float": typeFloat,
	"bool": typeBool, "list": typeList, "map": typeMap,
}

func (t fieldType) String() string {
	for name, ft := range fieldTypes {
		if ft == t {
			return name
		}
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// NewSchema compiles a declaration (field name -> string, int, float,
// bool, list, map or any). A nil or empty declaration gives a nil Schema,
// which checks nothing.
func NewSchema(decl map[string]string) (*Schema, error) {
	if len(decl) == 0 {
		return nil, nil
	}
	s := &Schema{}
	for name := range decl {
		s.names = append(s.names, name)
	}
	slices.Sort(s.names)
	for _, name := range s.names {
		t, ok := fieldTypes[decl[name]]
		if !ok {
			return nil, fmt.Errorf("schema field %q: unknown type %q (want string, int, float, bool, list, map or any)", name, decl[name])
		}
		s.types = append(s.types, t)
	}
	return s, nil
}

// Check returns f when it conforms, f with int64 values of float fields
// converted when that is all it lacks, or an error naming the first field
// that breaks a rule. A nil Schema accepts everything.
func (s *Schema) Check(f Fields) (Fields, error) {
	if s == nil {
		return f, nil
	}
	if sh := f.Shape(); sh != s.shape {
		s.shape = sh
		s.at = s.at[:0]
		for _, name := range s.names {
			s.at = append(s.at, sh.Index(name))
		}
	}
	var conv []any
	for i, j := range s.at {
		if j < 0 {
			return Fields{}, fmt.Errorf("field %q: missing (the source's schema declares it %s)", s.names[i], s.types[i])
		}
		v := f.vals[j]
		ok := false
		switch s.types[i] {
		case typeAny:
			ok = true
		case typeString:
			_, ok = v.(string)
		case typeInt:
			_, ok = v.(int64)
		case typeFloat:
			switch x := v.(type) {
			case float64:
				ok = true
			case int64:
				if conv == nil {
					conv = slices.Clone(f.vals)
				}
				conv[j] = float64(x)
				ok = true
			}
		case typeBool:
			_, ok = v.(bool)
		case typeList:
			_, ok = v.([]any)
		case typeMap:
			_, ok = v.(map[string]any)
		}
		if !ok {
			return Fields{}, fmt.Errorf("field %q: want %s (the source's schema), got %s", s.names[i], s.types[i], describe(v))
		}
	}
	if conv != nil {
		return Fields{shape: f.shape, vals: conv}, nil
	}
	return f, nil
}

// describe names a value's type, and shows it when it is short, for
// messages: string "404", float 2.5, null.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			return "a string"
		}
		return "string " + strconv.Quote(x)
	case int64:
		return "int " + strconv.FormatInt(x, 10)
	case float64:
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "bool " + strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}
