package expr

import "testing"

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
		got, err := p.EvalBool(tc.fields)
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
	v, err := p.Eval(map[string]any{"a": int64(21)})
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
	if ok, err := p.EvalBool(map[string]any{"c": int64(7)}); err != nil || !ok {
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
