package expr

import (
	"reflect"
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
	if got, err := p.Eval(dataflow.FieldsOf(map[string]any{"y": int64(1)})); err != nil || got != nil {
		t.Errorf("missing field: %v, %v; want nil", got, err)
	}
	if got, err := p.Eval(dataflow.Fields{}); err != nil || got != nil {
		t.Errorf("record without fields: %v, %v; want nil", got, err)
	}
	// The list is the record's own, not a copy (Normalize copies only
	// when an element changes).
	got, _ := p.Eval(dataflow.FieldsOf(map[string]any{"x": list}))
	if g := got.([]any); &g[0] != &list[0] {
		t.Error("a record's list was copied")
	}
}
