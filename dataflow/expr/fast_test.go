package expr

import (
	"fmt"
	"testing"

	"github.com/weir-stream/weir/dataflow"
)

// The fast path must agree with expr-lang on every input, including the
// ones where it steps aside.
func TestFastCompareAgreesWithVM(t *testing.T) {
	exprs := []string{
		`status != 404`, `status == 404`, `status < 500`, `status >= 200`, `500 > status`,
		`ratio <= 0.5`, `ip == "10.0.0.1"`, `"b" < ip`, `ok == true`, `ok != false`,
	}
	values := []any{nil, int64(404), int64(200), int64(503), 0.25, 0.75, 404.0, "10.0.0.1", "a", "z", true, false}
	fieldsOf := func(v any) dataflow.Fields {
		return dataflow.FieldsOf(map[string]any{"status": v, "ratio": v, "ip": v, "ok": v})
	}
	for _, src := range exprs {
		p, err := Compile(src, nil, Bool)
		if err != nil {
			t.Fatal(err)
		}
		if p.fast == nil {
			t.Fatalf("%s: no fast path", src)
		}
		slow, err := Compile(src, nil, Bool)
		if err != nil {
			t.Fatal(err)
		}
		slow.fast = nil
		for _, v := range values {
			f := fieldsOf(v)
			got, gerr := p.EvalBool(f)
			want, werr := slow.EvalBool(f)
			if got != want || (gerr == nil) != (werr == nil) {
				t.Errorf("%s with %v: fast %v, %v; vm %v, %v", src, v, got, gerr, want, werr)
			}
		}
	}
	for _, src := range []string{`a + 1 > 2`, `a in [1, 2]`, `a > b`, `a`} {
		p, err := Compile(src, nil, Bool)
		if err != nil {
			continue
		}
		if p.fast != nil {
			t.Errorf("%s: fast path for a shape it does not handle", src)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	for _, fast := range []bool{true, false} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			p, _ := Compile(`status != 404`, nil, Bool)
			if !fast {
				p.fast = nil
			}
			f := dataflow.FieldsOf(map[string]any{"ip": "1.2.3.4", "ts": int64(1), "url": "/", "status": int64(200), "bytes": int64(5)})
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, _ = p.EvalBool(f)
			}
		})
	}
}
