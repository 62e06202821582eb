package expr

import (
	"errors"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
)

func TestCompileAndEval(t *testing.T) {
	p, err := Compile(`status != 404 && bytes > 10`, nil, Bool)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		fields map[string]any
		want   bool
	}{
		{map[string]any{"status": int64(200), "bytes": int64(11)}, true},
		{map[string]any{"status": int64(404), "bytes": int64(11)}, false},
		{map[string]any{"status": float64(200), "bytes": float64(5)}, false},
	} {
		got, err := p.EvalBool(dataflow.FieldsOf(tc.fields))
		if err != nil || got != tc.want {
			t.Errorf("EvalBool(%v) = %v, %v; want %v", tc.fields, got, err, tc.want)
		}
	}
}

func TestSchemaTypeCheck(t *testing.T) {
	schema := map[string]string{"ip": "string", "status": "int"}
	if _, err := Compile(`ip + 1`, schema, Any); err == nil {
		t.Error("string + int compiled against a schema")
	}
	if _, err := Compile(`nope == 1`, schema, Bool); err == nil {
		t.Error("undeclared field compiled against a schema")
	}
	if _, err := Compile(`status`, schema, Bool); err == nil {
		t.Error("int expression accepted where a bool is wanted")
	}
	if _, err := Compile(`status >= 500`, schema, Bool); err != nil {
		t.Error(err)
	}
	if _, err := Compile(`x`, map[string]string{"x": "decimal"}, Any); err == nil {
		t.Error("unknown schema type accepted")
	}
}

func TestNormalize(t *testing.T) {
	p, err := Compile(`a * 2`, nil, Any)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Eval(dataflow.FieldsOf(map[string]any{"a": int64(21)}))
	if err != nil {
		t.Fatal(err)
	}
	if v != any(int64(42)) {
		t.Errorf("got %T %v, want int64 42", v, v)
	}
}

func TestSchemaAnyField(t *testing.T) {
	schema := map[string]string{"c": "any", "ip": "string"}
	for _, src := range []string{`c > 5`, `len(c) > 0`, `ip + "x" != ""`} {
		if _, err := Compile(src, schema, Bool); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
	p, err := Compile(`c > 5`, schema, Bool)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.EvalBool(dataflow.FieldsOf(map[string]any{"c": int64(7)})); err != nil || !ok {
		t.Errorf("c > 5 over c=7: %v %v", ok, err)
	}
}

func TestNormalizeDoesNotWriteIntoItsInput(t *testing.T) {
	in := []any{int64(1), []any{int(2)}}
	out := Normalize(in).([]any)
	if _, ok := in[1].([]any)[0].(int); !ok {
		t.Fatal("Normalize rewrote its input list")
	}
	if out[1].([]any)[0] != any(int64(2)) {
		t.Fatalf("nested int not normalized: %#v", out)
	}
	same := []any{int64(1), "x"}
	if got := Normalize(same).([]any); &got[0] != &same[0] {
		t.Error("an already normal list was copied")
	}
}

// A plain field name is read from the record without the VM; the result must
// be what the VM gives, for every value type and for a missing field.
func TestPlainFieldAgreesWithVM(t *testing.T) {
	p, err := Compile(`x`, nil, Any)
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsField() {
		t.Fatal("x is not read as a plain field")
	}
	for _, src := range []string{`x + 1`, `$env`, `true`, `nil`} {
		q, err := Compile(src, nil, Any)
		if err != nil {
			t.Fatal(err)
		}
		if q.IsField() {
			t.Errorf("%s is read as a plain field", src)
		}
	}
	list := []any{int64(1), "a"}
	for _, v := range []any{nil, int64(3), 2.5, "s", true, list, map[string]any{"k": int64(1)}, int32(7)} {
		f := dataflow.FieldsOf(map[string]any{"x": v, "y": int64(1)})
		got, err := p.Eval(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := p.run(f.Map())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, Normalize(want)) {
			t.Errorf("x = %#v: field path gives %#v, VM %#v", v, got, want)
		}
	}
	if _, err := p.Eval(dataflow.FieldsOf(map[string]any{"y": int64(1)})); !errors.Is(err, ErrMissingField) {
		t.Errorf("missing field: %v; want ErrMissingField", err)
	}
	if _, err := p.Eval(dataflow.Fields{}); !errors.Is(err, ErrMissingField) {
		t.Errorf("record without fields: %v; want ErrMissingField", err)
	}
	// The list is the record's own, not a copy (Normalize copies only
	// when an element changes).
	got, _ := p.Eval(dataflow.FieldsOf(map[string]any{"x": list}))
	if g := got.([]any); &g[0] != &list[0] {
		t.Error("a record's list was copied")
	}
}

// A field an expression names must exist in the record: a missing one is an
// error (for the node's on_error), never null, so that a misspelt filter
// does not drop every record unnoticed. Null values and $env lookups stay
// allowed.
func TestMissingFieldIsAnError(t *testing.T) {
	rec := dataflow.FieldsOf(map[string]any{"status": int64(200), "opt": nil, "user": map[string]any{"id": "u"}})
	other := dataflow.FieldsOf(map[string]any{"bytes": int64(1)})
	for _, tc := range []struct {
		src     string
		want    Want
		missing string // "" when it evaluates without error
	}{
		{`nosuch`, Bool, "nosuch"},
		{`nosuch == 5`, Bool, "nosuch"},
		{`status != 404 && nosuch > 1`, Bool, "nosuch"},
		{`nosuch`, Any, "nosuch"},
		{`nosuch * 2`, Any, "nosuch"},
		{`status != 404`, Bool, ""},
		{`opt == nil`, Bool, ""},
		{`user.nick == nil`, Bool, ""},
		{`$env.nosuch ?? 3`, Any, ""},
		{`"nosuch" in $env`, Bool, ""},
		{`let s = status; s + 1`, Any, ""},
		{`lower(user.id)`, Any, ""},
		{`filter([1, 2], # > 1)`, Any, ""},
	} {
		p, err := Compile(tc.src, nil, tc.want)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		for i, f := range []dataflow.Fields{rec, other} {
			var err error
			if tc.want == Bool {
				_, err = p.EvalBool(f)
			} else {
				_, err = p.Eval(f)
			}
			switch {
			case tc.missing == "" && i == 0 && err != nil:
				t.Errorf("%s: %v", tc.src, err)
			case tc.missing != "" && !errors.Is(err, ErrMissingField):
				t.Errorf("%s over %v: err %v, want ErrMissingField", tc.src, f, err)
			case tc.missing != "" && i == 0 && !strings.Contains(err.Error(), `"`+tc.missing+`"`):
				t.Errorf("%s: error %q does not name %q", tc.src, err, tc.missing)
			}
		}
		// Through an environment map as well (several expressions of one
		// record share it).
		if tc.want == Any {
			env := rec.Map()
			if tc.missing != "" {
				env = other.Map()
			}
			_, err := p.EvalEnv(env)
			if (tc.missing != "") != errors.Is(err, ErrMissingField) {
				t.Errorf("%s: EvalEnv err %v", tc.src, err)
			}
		}
	}
}

// A filter whose result is not a bool (a null field) is an error, not false.
func TestFilterWantsBool(t *testing.T) {
	p, err := Compile(`flag`, nil, Bool)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{nil, int64(1), "true"} {
		if _, err := p.EvalBool(dataflow.FieldsOf(map[string]any{"flag": v})); err == nil || !strings.Contains(err.Error(), "want a bool") {
			t.Errorf("flag = %#v: err %v, want 'want a bool'", v, err)
		}
	}
	if ok, err := p.EvalBool(dataflow.FieldsOf(map[string]any{"flag": true})); !ok || err != nil {
		t.Errorf("flag = true: %v, %v", ok, err)
	}
}

func TestIntegerOverflowIsAnError(t *testing.T) {
	for _, tc := range []struct {
		src    string
		fields map[string]any
		want   any // nil: overflow
	}{
		{`bytes * 9223372036854775807`, map[string]any{"bytes": int64(2)}, nil},
		{`bytes * 9223372036854775807`, map[string]any{"bytes": int64(1)}, int64(math.MaxInt64)},
		{`bytes * 9223372036854775807`, map[string]any{"bytes": int64(-1)}, int64(-math.MaxInt64)},
		{`a * b`, map[string]any{"a": int64(math.MinInt64), "b": int64(-1)}, nil},
		{`a * b`, map[string]any{"a": int64(-1), "b": int64(math.MinInt64)}, nil},
		{`a * b`, map[string]any{"a": int64(1 << 32), "b": int64(1 << 30)}, int64(1 << 62)},
		{`a * b`, map[string]any{"a": int64(1 << 32), "b": int64(1 << 31)}, nil},
		{`a * b`, map[string]any{"a": int64(1 << 32), "b": int64(1 << 32)}, nil},
		{`a + 1`, map[string]any{"a": int64(math.MaxInt64)}, nil},
		{`a + 1`, map[string]any{"a": int64(math.MaxInt64 - 1)}, int64(math.MaxInt64)},
		{`a + b`, map[string]any{"a": int64(math.MinInt64), "b": int64(-1)}, nil},
		{`a - 1`, map[string]any{"a": int64(math.MinInt64)}, nil},
		{`a - b`, map[string]any{"a": int64(0), "b": int64(math.MinInt64)}, nil},
		{`a - b`, map[string]any{"a": int64(-1), "b": int64(math.MinInt64)}, int64(math.MaxInt64)},
		{`-a`, map[string]any{"a": int64(math.MinInt64)}, nil},
		{`-a`, map[string]any{"a": int64(5)}, int64(-5)},
		{`-a`, map[string]any{"a": 2.5}, -2.5},
		{`9223372036854775807 + 1`, nil, nil},
		// Other operand types keep expr-lang's meaning.
		{`a + 1`, map[string]any{"a": 1.5}, 2.5},
		{`a * 1.5`, map[string]any{"a": int64(2)}, 3.0},
		{`a + "x" + b`, map[string]any{"a": "y", "b": "z"}, "yxz"},
		{`a * 2`, map[string]any{"a": 1e308}, math.Inf(1)},
		{`a + "x"`, map[string]any{"a": "y"}, "yx"},
		{`a - 1 > 0 ? -a : a * 3`, map[string]any{"a": int64(4)}, int64(-4)},
	} {
		p, err := Compile(tc.src, nil, Any)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, err := p.Eval(dataflow.FieldsOf(tc.fields))
		if tc.want == nil {
			if !errors.Is(err, ErrOverflow) || !strings.Contains(err.Error(), tc.src) {
				t.Errorf("%s over %v = %v, %v; want an overflow error naming the expression", tc.src, tc.fields, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s over %v = %#v, %v; want %#v", tc.src, tc.fields, got, err, tc.want)
		}
	}
}

// The checked arithmetic must agree with plain int64 arithmetic wherever
// the exact result fits.
func FuzzCheckedArithmetic(f *testing.F) {
	f.Add(int64(1), int64(2))
	f.Add(int64(math.MaxInt64), int64(1))
	f.Add(int64(math.MinInt64), int64(-1))
	f.Add(int64(-3037000500), int64(3037000500))
	add, _ := Compile(`a + b`, nil, Any)
	sub, _ := Compile(`a - b`, nil, Any)
	mul, _ := Compile(`a * b`, nil, Any)
	f.Fuzz(func(t *testing.T, a, b int64) {
		fields := dataflow.FieldsOf(map[string]any{"a": a, "b": b})
		for _, c := range []struct {
			p     *Program
			exact *big.Int
		}{
			{add, new(big.Int).Add(big.NewInt(a), big.NewInt(b))},
			{sub, new(big.Int).Sub(big.NewInt(a), big.NewInt(b))},
			{mul, new(big.Int).Mul(big.NewInt(a), big.NewInt(b))},
		} {
			got, err := c.p.Eval(fields)
			if c.exact.IsInt64() {
				if err != nil || got != any(c.exact.Int64()) {
					t.Errorf("%s with a=%d b=%d = %v, %v; want %d", c.p.Source(), a, b, got, err, c.exact)
				}
			} else if !errors.Is(err, ErrOverflow) {
				t.Errorf("%s with a=%d b=%d = %v, %v; want overflow", c.p.Source(), a, b, got, err)
			}
		}
	})
}

// BenchmarkArithmetic is the cost of checked integer arithmetic (a call per
// operator) in a map-like expression.
func BenchmarkArithmetic(b *testing.B) {
	p, _ := Compile(`bytes * 8 + status - 1`, nil, Any)
	env := map[string]any{"bytes": int64(5120), "status": int64(200)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.EvalEnv(env); err != nil {
			b.Fatal(err)
		}
	}
}
