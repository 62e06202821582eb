package expr

import (
	"github.com/expr-lang/expr/ast"
	"github.com/weir-stream/weir/dataflow"
)

// fastCompare evaluates `field <op> literal` (or `literal <op> field`)
// without the VM: the most common filter shape, run once per record. It
// answers only when the field holds exactly the literal's type (int64 with
// an integer, float64 with a float, string with a string, bool with a bool);
// anything else (a missing field, mixed numeric types) falls back to the VM,
// so the result is always what expr-lang itself would give.
type fastCompare struct {
	field string
	op    string
	lit   any // int64, float64, string or bool
}

// newFastCompare recognizes the shape in a compiled program's AST.
func newFastCompare(n ast.Node) *fastCompare {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return nil
	}
	switch b.Operator {
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return nil
	}
	op := b.Operator
	id, lit := b.Left, b.Right
	if _, ok := id.(*ast.IdentifierNode); !ok {
		id, lit = b.Right, b.Left
		op = mirror(op)
	}
	ident, ok := id.(*ast.IdentifierNode)
	if !ok {
		return nil
	}
	var v any
	switch l := lit.(type) {
	case *ast.IntegerNode:
		v = int64(l.Value)
	case *ast.FloatNode:
		v = l.Value
	case *ast.StringNode:
		v = l.Value
	case *ast.BoolNode:
		if op != "==" && op != "!=" {
			return nil
		}
		v = l.Value
	default:
		return nil
	}
	return &fastCompare{field: ident.Value, op: op, lit: v}
}

// mirror turns `lit op field` into `field op' lit`.
func mirror(op string) string {
	switch op {
	case "<":
		return ">"
	case "<=":
		return ">="
	case ">":
		return "<"
	case ">=":
		return "<="
	}
	return op
}

// eval returns the result and true, or false when the VM must decide.
func (f *fastCompare) eval(fields dataflow.Fields) (result, ok bool) {
	fv := fields.Get(f.field)
	switch lit := f.lit.(type) {
	case int64:
		v, is := fv.(int64)
		if !is {
			return false, false
		}
		return cmp(v, lit, f.op), true
	case float64:
		v, is := fv.(float64)
		if !is {
			return false, false
		}
		return cmp(v, lit, f.op), true
	case string:
		v, is := fv.(string)
		if !is {
			return false, false
		}
		return cmp(v, lit, f.op), true
	case bool:
		v, is := fv.(bool)
		if !is {
			return false, false
		}
		return (v == lit) == (f.op == "=="), true
	}
	return false, false
}

func cmp[T int64 | float64 | string](a, b T, op string) bool {
	switch op {
	case "==":
		return a == b
	case "!=":
		return a != b
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	}
	return a >= b
}
