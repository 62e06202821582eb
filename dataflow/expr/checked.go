package expr

import (
	"errors"
	"fmt"
	"math"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// Integer arithmetic in expr-lang wraps on overflow (bytes *
// 9223372036854775807 gives a negative number). The VM has no hook for its
// arithmetic opcodes, so the compiled program's +, - and * and unary minus
// are patched into calls of the functions below, which check integer
// operands and leave every other operand type (floats, strings, lists,
// durations) to expr-lang's own runtime. The VM reuses one argument buffer
// for these calls, so a checked operation costs a function call, not an
// allocation. Division always gives a float, and % cannot overflow.
const (
	fnAdd = "__weir_add"
	fnSub = "__weir_sub"
	fnMul = "__weir_mul"
	fnNeg = "__weir_neg"
)

// ErrOverflow is the error of integer arithmetic that does not fit int64.
var ErrOverflow = errors.New("integer overflow")

var checkedOps = map[string]string{"+": fnAdd, "-": fnSub, "*": fnMul}

var checkedOptions = []expr.Option{
	expr.Function(fnAdd, func(a ...any) (any, error) {
		x, y, ok := ints(a[0], a[1])
		if !ok {
			return runtime.Add(a[0], a[1]), nil
		}
		r := x + y
		if (r > x) != (y > 0) {
			return nil, overflow(x, "+", y)
		}
		return r, nil
	}),
	expr.Function(fnSub, func(a ...any) (any, error) {
		x, y, ok := ints(a[0], a[1])
		if !ok {
			return runtime.Subtract(a[0], a[1]), nil
		}
		r := x - y
		if (r < x) != (y > 0) {
			return nil, overflow(x, "-", y)
		}
		return r, nil
	}),
	expr.Function(fnMul, func(a ...any) (any, error) {
		x, y, ok := ints(a[0], a[1])
		if !ok {
			return runtime.Multiply(a[0], a[1]), nil
		}
		if x == 0 || y == 0 {
			return int64(0), nil
		}
		r := x * y
		if r/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
			return nil, overflow(x, "*", y)
		}
		return r, nil
	}),
	expr.Function(fnNeg, func(a ...any) (any, error) {
		x, ok := asInt(a[0])
		if !ok {
			return runtime.Negate(a[0]), nil
		}
		if x == math.MinInt64 {
			return nil, fmt.Errorf("%w: -(%d)", ErrOverflow, x)
		}
		return -x, nil
	}),
}

func overflow(x int64, op string, y int64) error {
	return fmt.Errorf("%w: %d %s %d does not fit a 64-bit integer", ErrOverflow, x, op, y)
}

// ints returns both operands as int64 when both are integers.
func ints(a, b any) (int64, int64, bool) {
	x, ok := asInt(a)
	if !ok {
		return 0, 0, false
	}
	y, ok := asInt(b)
	return x, y, ok
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// checkArithmetic patches arithmetic into the checked functions. A unary
// minus on a literal (-5) is left alone: it cannot overflow, and the fast
// comparison path recognizes literals only.
type checkArithmetic struct{}

func (checkArithmetic) Visit(n *ast.Node) {
	switch b := (*n).(type) {
	case *ast.BinaryNode:
		if isNonInt(b.Left) || isNonInt(b.Right) {
			return // a float or string literal: no integer result
		}
		if fn, ok := checkedOps[b.Operator]; ok {
			ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: []ast.Node{b.Left, b.Right}})
		}
	case *ast.UnaryNode:
		if b.Operator != "-" {
			return
		}
		switch b.Node.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
			return
		}
		ast.Patch(n, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fnNeg}, Arguments: []ast.Node{b.Node}})
	}
}

func isNonInt(n ast.Node) bool {
	switch n.(type) {
	case *ast.FloatNode, *ast.StringNode:
		return true
	}
	return false
}
