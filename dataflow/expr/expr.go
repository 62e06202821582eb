// Package expr compiles and evaluates the expressions of a job spec with
// expr-lang/expr. An expression sees a record's fields as variables.
package expr

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/weir-stream/weir/dataflow"
)

// Want is the result type an expression must have.
type Want int

const (
	Any Want = iota
	Bool
	String
	Number
	List
)

// Program is a compiled expression. It is not safe for concurrent use: each
// subtask compiles its own.
type Program struct {
	src  string
	prog *vm.Program
	vm   vm.VM
	want Want
	fast *fastCompare // nil unless the expression is a plain comparison
	// field is set when the expression is a plain field name: it is read
	// from the record, without the VM or an environment map.
	field string
	// required are the record fields the expression names; okShape is the
	// last record shape found to have them all.
	required []string
	okShape  *dataflow.Shape
}

// Compile compiles src. With a schema (field name -> string, int, float,
// bool, list, map or any) the expression is first type-checked against it and
// may only name declared fields; the program itself always evaluates over a
// record's fields, where a field it names must exist (ErrMissingField) and
// integer +, -, * and negation are checked (ErrOverflow). A panic inside
// the expression compiler is returned as an error.
func Compile(src string, schema map[string]string, want Want) (p *Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("expression %q: cannot compile: %v", src, r)
		}
	}()
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("empty expression")
	}
	if schema != nil {
		env, err := schemaEnv(schema)
		if err != nil {
			return nil, err
		}
		opts := []expr.Option{expr.Env(env)}
		switch want {
		case Bool:
			opts = append(opts, expr.AsBool())
		case String:
			opts = append(opts, expr.AsKind(reflect.String))
		}
		if _, err := expr.Compile(src, opts...); err != nil {
			return nil, fmt.Errorf("expression %q: %s", src, firstLine(err.Error()))
		}
	}
	if want == Bool {
		// Compiled for its type check only: the program that runs leaves
		// out AsBool, which would turn a null result into false and drop
		// the record unnoticed; EvalBool refuses anything but a bool.
		if _, err := expr.Compile(src, expr.AllowUndefinedVariables(), expr.AsBool()); err != nil {
			return nil, fmt.Errorf("expression %q: %s", src, firstLine(err.Error()))
		}
	}
	opts := append([]expr.Option{expr.AllowUndefinedVariables(), expr.Patch(checkArithmetic{})}, checkedOptions...)
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %s", src, firstLine(err.Error()))
	}
	p = &Program{src: src, prog: prog, want: want, required: fieldsNamed(prog.Node())}
	if want == Bool {
		p.fast = newFastCompare(prog.Node())
	}
	if id, ok := prog.Node().(*ast.IdentifierNode); ok && !strings.HasPrefix(id.Value, "$") {
		p.field = id.Value
	}
	return p, nil
}

// fieldsNamed lists the record fields an expression names, in order of
// first appearance: its identifiers, less functions, let variables and
// $env. Nested names (user.id) are not fields of the record.
func fieldsNamed(root ast.Node) []string {
	var v namesVisitor
	ast.Walk(&root, &v)
	var out []string
	for _, n := range v.idents {
		if !v.skip[n] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

type namesVisitor struct {
	idents []string
	skip   map[string]bool
}

func (v *namesVisitor) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if !strings.HasPrefix(x.Value, "$") {
			v.idents = append(v.idents, x.Value)
		}
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok {
			v.skipName(id.Value)
		}
	case *ast.VariableDeclaratorNode:
		v.skipName(x.Name)
	}
}

func (v *namesVisitor) skipName(name string) {
	if v.skip == nil {
		v.skip = map[string]bool{}
	}
	v.skip[name] = true
}

// checkFields returns an error naming the first field the expression needs
// that the record lacks. A missing field is an error, not null: a filter
// on a misspelt name would otherwise drop every record unnoticed. The
// answer is kept for the last shape, which nearly every record shares, so
// the check costs a pointer comparison.
func (p *Program) checkFields(fields dataflow.Fields) error {
	if len(p.required) == 0 {
		return nil
	}
	s := fields.Shape()
	if s == p.okShape {
		return nil
	}
	for _, name := range p.required {
		if s.Index(name) < 0 {
			return p.missing(name)
		}
	}
	p.okShape = s
	return nil
}

func (p *Program) checkEnv(env map[string]any) error {
	for _, name := range p.required {
		if _, ok := env[name]; !ok {
			return p.missing(name)
		}
	}
	return nil
}

func (p *Program) missing(name string) error {
	return fmt.Errorf("expression %q: %w: %q", p.src, ErrMissingField, name)
}

// ErrMissingField is the error of an expression that names a field the
// record does not have.
var ErrMissingField = errors.New("the record has no field")

// schemaEnv is a struct value with one field per schema entry, of the
// declared type (an "any" field has the interface type, so it can be used
// anywhere), named by an expr tag.
func schemaEnv(schema map[string]string) (any, error) {
	names := make([]string, 0, len(schema))
	for name := range schema {
		names = append(names, name)
	}
	sort.Strings(names)
	fields := make([]reflect.StructField, 0, len(names))
	for i, name := range names {
		t, ok := schemaTypes[schema[name]]
		if !ok {
			return nil, fmt.Errorf("schema field %q: unknown type %q (want string, int, float, bool, list, map or any)", name, schema[name])
		}
		fields = append(fields, reflect.StructField{
			Name: "F" + strconv.Itoa(i),
			Type: t,
			Tag:  reflect.StructTag(`expr:"` + strings.ReplaceAll(name, `"`, "") + `"`),
		})
	}
	return reflect.New(reflect.StructOf(fields)).Elem().Interface(), nil
}

var schemaTypes = map[string]reflect.Type{
	"string": reflect.TypeFor[string](),
	"int":    reflect.TypeFor[int64](),
	"float":  reflect.TypeFor[float64](),
	"bool":   reflect.TypeFor[bool](),
	"list":   reflect.TypeFor[[]any](),
	"map":    reflect.TypeFor[map[string]any](),
	"any":    reflect.TypeFor[any](),
}

// Source returns the expression's text.
func (p *Program) Source() string { return p.src }

// Eval evaluates the expression over a record's fields. A plain field name
// gives the field's value as it is.
func (p *Program) Eval(fields dataflow.Fields) (any, error) {
	if p.field != "" {
		v, ok := fields.Lookup(p.field)
		if !ok {
			return nil, p.missing(p.field)
		}
		return fieldValue(v), nil
	}
	if err := p.checkFields(fields); err != nil {
		return nil, err
	}
	return p.eval(fields.Map())
}

// EvalEnv evaluates the expression over an environment built with
// Fields.Map, for a caller that evaluates several expressions over one
// record and builds it once.
func (p *Program) EvalEnv(env map[string]any) (any, error) {
	if err := p.checkEnv(env); err != nil {
		return nil, err
	}
	if p.field != "" {
		return fieldValue(env[p.field]), nil
	}
	return p.eval(env)
}

func (p *Program) eval(env map[string]any) (any, error) {
	v, err := p.run(env)
	if err != nil {
		return nil, err
	}
	return Normalize(v), nil
}

// IsField reports whether the expression is a plain field name, which Eval
// reads without building an environment.
func (p *Program) IsField() bool { return p.field != "" }

func (p *Program) run(env map[string]any) (any, error) {
	if env == nil {
		env = emptyEnv
	}
	v, err := p.vm.Run(p.prog, env)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", p.src, firstLineError{err})
	}
	return v, nil
}

// emptyEnv stands in for a record without fields: the VM needs a map, in
// which every field is missing (nil). The VM does not write to it.
var emptyEnv = map[string]any{}

// fieldValue is a field's value as the VM would give it: record values as
// they are (Normalize would copy a list), anything else normalized.
func fieldValue(v any) any {
	switch v.(type) {
	case nil, string, int64, float64, bool, map[string]any, []any:
		return v
	}
	return Normalize(v)
}

// EvalBool evaluates a boolean expression.
func (p *Program) EvalBool(fields dataflow.Fields) (bool, error) {
	if err := p.checkFields(fields); err != nil {
		return false, err
	}
	if p.fast != nil {
		if b, ok := p.fast.eval(fields); ok {
			return b, nil
		}
	}
	v, err := p.run(fields.Map())
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("expression %q: want a bool, got %s", p.src, kindOf(v))
	}
	return b, nil
}

// Normalize maps the numeric types expr-lang produces onto the record value
// types (int64, float64).
func Normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case uint:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	case float32:
		return float64(x)
	case []any:
		// The list may come straight from an input record, which is
		// immutable: copy only when an element changes.
		var out []any
		for i, e := range x {
			n := Normalize(e)
			if out == nil && !sameValue(n, e) {
				out = make([]any, len(x))
				copy(out, x[:i])
			}
			if out != nil {
				out[i] = n
			}
		}
		if out == nil {
			return x
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	}
	return v
}

// sameValue reports whether Normalize left v as it was (same dynamic type;
// lists are compared by identity of their backing array).
func sameValue(n, v any) bool {
	switch a := n.(type) {
	case []any:
		b, ok := v.([]any)
		return ok && len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
	case map[string]any:
		_, ok := v.(map[string]any)
		return ok
	}
	return reflect.TypeOf(n) == reflect.TypeOf(v)
}

// firstLineError shows the first line of an expr-lang error (the rest is a
// source snippet) and keeps the error chain, so ErrOverflow is found.
type firstLineError struct{ err error }

func (e firstLineError) Error() string { return firstLine(e.err.Error()) }
func (e firstLineError) Unwrap() error { return e.err }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// kindOf names a value's type for messages, in the spec's words.
func kindOf(v any) string {
	switch Normalize(v).(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}
