package dataflow

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestShape(t *testing.T) {
	for _, n := range []int{0, 3, linearScanMax, linearScanMax + 1, 40} {
		names := make([]string, n)
		for i := range names {
			names[i] = "f" + itoa(int64(i))
		}
		s, err := NewShape(names...)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != n {
			t.Fatalf("%d names: Len %d", n, s.Len())
		}
		for i, name := range names {
			if s.Index(name) != i || s.Name(i) != name {
				t.Fatalf("%d names: Index(%q) = %d, want %d", n, name, s.Index(name), i)
			}
		}
		if s.Index("nope") != -1 {
			t.Fatalf("%d names: a missing name has an index", n)
		}
		if n > 1 {
			dup := append(slices.Clone(names), names[n/2])
			if _, err := NewShape(dup...); err == nil || !strings.Contains(err.Error(), names[n/2]) {
				t.Fatalf("%d names: duplicate accepted or not named: %v", n, err)
			}
		}
	}
	names := []string{"a", "b"}
	s := MustShape(names...)
	names[0] = "z"
	if s.Name(0) != "a" {
		t.Error("the shape shares the caller's slice")
	}
}

func TestFieldsReadAndCopy(t *testing.T) {
	f := NewFields(MustShape("ip", "count", "tags"), []any{"10.0.0.1", int64(3), []any{"x"}})
	if f.IsZero() || f.Len() != 3 || f.Get("count") != int64(3) || f.Get("nope") != nil {
		t.Fatalf("reads: %v", f)
	}
	if _, ok := f.Lookup("nope"); ok {
		t.Error("Lookup found a missing field")
	}
	var order []string
	for k := range f.All() {
		order = append(order, k)
	}
	if !slices.Equal(order, []string{"ip", "count", "tags"}) {
		t.Errorf("order %v", order)
	}
	if got := f.String(); got != "{ip: 10.0.0.1, count: 3, tags: [x]}" {
		t.Errorf("String %q", got)
	}
	if !reflect.DeepEqual(f.Map(), map[string]any{"ip": "10.0.0.1", "count": int64(3), "tags": []any{"x"}}) {
		t.Errorf("Map %v", f.Map())
	}
	var zero Fields
	if !zero.IsZero() || zero.Len() != 0 || zero.Get("x") != nil || zero.Map() != nil || zero.Shape().Len() != 0 {
		t.Error("zero Fields does not read as empty")
	}
	g := FieldsOf(map[string]any{"b": int64(2), "a": int64(1)})
	if g.Name(0) != "a" || g.Name(1) != "b" {
		t.Errorf("FieldsOf order: %v", g)
	}
	if !FieldsOf(nil).IsZero() {
		t.Error("FieldsOf(nil) is not zero")
	}
	defer func() {
		if recover() == nil {
			t.Error("NewFields accepted too few values")
		}
	}()
	NewFields(MustShape("a", "b"), []any{1})
}

func TestShapeWith(t *testing.T) {
	s := MustShape("a", "b", "c")
	out, at := s.With([]string{"b", "x", "y"})
	if !slices.Equal(out.names, []string{"a", "b", "c", "x", "y"}) || !slices.Equal(at, []int{1, 3, 4}) {
		t.Fatalf("With: %v %v", out.names, at)
	}
	same, at := s.With([]string{"c"})
	if same != s || !slices.Equal(at, []int{2}) {
		t.Error("With of existing names made a new shape")
	}
	wide, _ := emptyShape.With([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"})
	if wide.Index("10") != 9 {
		t.Error("a wide shape from With has no working index")
	}
}

func TestShapeCache(t *testing.T) {
	var c ShapeCache
	a1, _ := c.Shape([]string{"a", "b"})
	b1, _ := c.Shape([]string{"b", "a"})
	names := []string{"a", "b"}
	a2, _ := c.Shape(names)
	b2, _ := c.Shape([]string{"b", "a"})
	if a1 != a2 || b1 != b2 || a1 == b1 {
		t.Error("alternating shapes are not reused")
	}
	names[0] = "z"
	if a1.Name(0) != "a" {
		t.Error("the cache kept the caller's slice")
	}
	if _, err := c.Shape([]string{"a", "a"}); err == nil {
		t.Error("duplicate names accepted")
	}
}

// stdJSON is encoding/json's encoding without HTML escaping, which
// AppendJSON must match byte for byte.
func stdJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func TestAppendJSON(t *testing.T) {
	values := []any{nil, true, false, int64(0), int64(-42), int64(math.MaxInt64), 0.0, 1.5, -2.25e-7, 1e21, 123456789.0, 1e-6,
		"", "plain", `quote"back\slash`, "tab\tnew\nline\x01", "<html>&", "é ü 😀", "bad \xff utf8", "\u2028\u2029",
		[]any{int64(1), "x", nil}, map[string]any{"k": []any{}, "a": 2.5}, []byte("bytes")}
	for _, v := range values {
		want, err := stdJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSONValue(nil, v)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%#v: got %s, %v; want %s", v, got, err, want)
		}
	}
	f := NewFields(MustShape("z", "a\"b"), []any{int64(1), "x"})
	got, err := AppendJSON([]byte("prefix "), f)
	if err != nil || string(got) != `prefix {"z":1,"a\"b":"x"}` {
		t.Errorf("AppendJSON = %s, %v", got, err)
	}
	if got, _ := AppendJSON(nil, Fields{}); string(got) != "{}" {
		t.Errorf("zero Fields: %s", got)
	}
	if b, err := json.Marshal(struct{ F Fields }{f}); err != nil || string(b) != `{"F":{"z":1,"a\"b":"x"}}` {
		t.Errorf("json.Marshal: %s, %v", b, err)
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), make(chan int)} {
		f := NewFields(MustShape("ok", "bad"), []any{int64(1), bad})
		got, err := AppendJSON([]byte("keep"), f)
		if err == nil || !strings.Contains(err.Error(), `field "bad"`) || string(got) != "keep" {
			t.Errorf("%T: got %q, %v; want an error naming the field and dst unchanged", bad, got, err)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("plain", 1.5, int64(3))
	f.Add("<\"\\\x00\xff\u2028é>", 1e-9, int64(-1))
	f.Add("", 1e300, int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, s string, x float64, n int64) {
		for _, v := range []any{s, x, n, []any{s, x}} {
			want, werr := stdJSON(v)
			got, gerr := appendJSONValue(nil, v)
			if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("%#v: got %s, %v; want %s, %v", v, got, gerr, want, werr)
			}
		}
		// A name is a string too.
		got, err := AppendJSON(nil, NewFields(MustShape(s), []any{n}))
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]int64
		if err := json.Unmarshal(got, &back); err != nil || len(back) != 1 {
			t.Fatalf("%s does not decode: %v", got, err)
		}
	})
}
