package dataflow

import (
	"reflect"
	"strings"
	"testing"
)

func TestSchemaCheck(t *testing.T) {
	s, err := NewSchema(map[string]string{"status": "int", "ratio": "float", "ip": "string", "ok": "bool", "tags": "list", "user": "map", "extra": "any"})
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]any{
		"status": int64(404), "ratio": 0.5, "ip": "1.2.3.4", "ok": true,
		"tags": []any{"a"}, "user": map[string]any{"id": "u"}, "extra": nil, "undeclared": "kept",
	}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == deleted {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		fields map[string]any
		want   map[string]any // nil: an error containing err
		err    string
	}{
		{"conforms", good, good, ""},
		{"int as a JSON string", with("status", "404"), nil, `field "status": want int (the source's schema), got string "404"`},
		{"int as a float", with("status", 404.5), nil, `field "status": want int (the source's schema), got float 404.5`},
		{"int null", with("status", nil), nil, `field "status": want int (the source's schema), got null`},
		{"int missing", with("status", deleted), nil, `field "status": missing (the source's schema declares it int)`},
		{"float from an int", with("ratio", int64(2)), with("ratio", 2.0), ""},
		{"float as a string", with("ratio", "0.5"), nil, `field "ratio": want float`},
		{"string as an int", with("ip", int64(1)), nil, `field "ip": want string (the source's schema), got int 1`},
		{"bool as a string", with("ok", "true"), nil, `field "ok": want bool`},
		{"list as a map", with("tags", map[string]any{}), nil, `field "tags": want list (the source's schema), got a map`},
		{"map as a list", with("user", []any{}), nil, `field "user": want map (the source's schema), got a list`},
		{"any takes a string", with("extra", "x"), with("extra", "x"), ""},
		{"any must be present", with("extra", deleted), nil, `field "extra": missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := FieldsOf(tc.fields)
			// Twice: the second call takes the cached shape.
			for range 2 {
				got, err := s.Check(in)
				if tc.want == nil {
					if err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Fatalf("err %v, want %q", err, tc.err)
					}
					continue
				}
				if err != nil || !reflect.DeepEqual(got.Map(), tc.want) {
					t.Fatalf("got %v, %v; want %v", got, err, tc.want)
				}
			}
			// The input is immutable: a conversion copies it.
			if !reflect.DeepEqual(in.Map(), tc.fields) {
				t.Errorf("input changed to %v", in)
			}
		})
	}
	// Alternating shapes re-resolve the positions.
	a, b := FieldsOf(good), FieldsOf(with("status", "x"))
	for range 3 {
		if _, err := s.Check(a); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Check(b); err == nil {
			t.Fatal("alternating shape: string status accepted")
		}
	}
}

type deletedT struct{}

var deleted = deletedT{}

func TestNewSchema(t *testing.T) {
	if s, err := NewSchema(nil); s != nil || err != nil {
		t.Errorf("nil declaration: %v, %v", s, err)
	}
	if f, err := (*Schema)(nil).Check(FieldsOf(map[string]any{"a": "x"})); err != nil || f.Get("a") != "x" {
		t.Errorf("nil schema: %v, %v", f, err)
	}
	if _, err := NewSchema(map[string]string{"a": "decimal"}); err == nil || !strings.Contains(err.Error(), `unknown type "decimal"`) {
		t.Errorf("unknown type: %v", err)
	}
}

func BenchmarkSchemaCheck(b *testing.B) {
	s, _ := NewSchema(map[string]string{"ip": "string", "ts": "int", "url": "string", "status": "int", "bytes": "int"})
	f := NewFields(MustShape("ip", "ts", "url", "status", "bytes"), []any{"1.2.3.4", int64(1), "/", int64(200), int64(5)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Check(f); err != nil {
			b.Fatal(err)
		}
	}
}
