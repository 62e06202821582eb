// Package expr compiles and evaluates the expressions of a job spec with
// expr-lang/expr. An expression sees a record's fields as variables.
package expr

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
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
}

// Compile compiles src. With a schema (field name -> string, int, float,
// bool, list, map or any) the expression is type-checked against it and may
// only name declared fields; without one any field name is allowed and a
// missing field evaluates to nil.
func Compile(src string, schema map[string]string, want Want) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("empty expression")
	}
	var opts []expr.Option
	if schema != nil {
		env := make(map[string]any, len(schema))
		for name, typ := range schema {
			z, err := zeroOf(typ)
			if err != nil {
				return nil, fmt.Errorf("schema field %q: %w", name, err)
			}
			env[name] = z
		}
		opts = append(opts, expr.Env(env))
	} else {
		opts = append(opts, expr.AllowUndefinedVariables())
	}
	switch want {
	case Bool:
		opts = append(opts, expr.AsBool())
	case String:
		if schema != nil {
			opts = append(opts, expr.AsKind(stringKind))
		}
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %s", src, firstLine(err.Error()))
	}
	return &Program{src: src, prog: p, want: want}, nil
}

// Source returns the expression's text.
func (p *Program) Source() string { return p.src }

// Eval evaluates the expression over a record's fields.
func (p *Program) Eval(fields map[string]any) (any, error) {
	v, err := p.vm.Run(p.prog, fields)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %s", p.src, firstLine(err.Error()))
	}
	return Normalize(v), nil
}

// EvalBool evaluates a boolean expression.
func (p *Program) EvalBool(fields map[string]any) (bool, error) {
	v, err := p.vm.Run(p.prog, fields)
	if err != nil {
		return false, fmt.Errorf("expression %q: %s", p.src, firstLine(err.Error()))
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("expression %q: want a bool, got %T", p.src, v)
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
		for i := range x {
			x[i] = Normalize(x[i])
		}
		return x
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	}
	return v
}

func zeroOf(typ string) (any, error) {
	switch typ {
	case "string":
		return "", nil
	case "int":
		return int64(0), nil
	case "float":
		return float64(0), nil
	case "bool":
		return false, nil
	case "list":
		return []any{}, nil
	case "map":
		return map[string]any{}, nil
	case "any":
		return nil, nil
	}
	return nil, fmt.Errorf("unknown type %q (want string, int, float, bool, list, map or any)", typ)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
