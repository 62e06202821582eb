package operator_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator"
	"github.com/weir-stream/weir/worker/operator/optest"
)

var origin = dataflow.Origin{Source: "src", Offset: 7}

func rec(fields map[string]any) dataflow.Record {
	return dataflow.Record{Time: 42, Fields: dataflow.FieldsOf(fields), Origin: origin}
}

// harnessFor builds the last node of a pipeline in a harness.
func harnessFor(t *testing.T, ctx *dataflow.Context, nodes ...spec.Node) *optest.Harness {
	t.Helper()
	job := &spec.Job{Name: "j", MaxParallelism: dataflow.DefaultMaxParallelism, Pipeline: nodes}
	last := &job.Pipeline[len(nodes)-1]
	if ctx == nil {
		ctx = optest.Context(last.Name)
	}
	op, err := operator.New(job, last, ctx)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return optest.New(t, op, ctx)
}

func fields(kv ...any) spec.Fields {
	var fs spec.Fields
	for i := 0; i < len(kv); i += 2 {
		fs = append(fs, spec.Field{Name: kv[i].(string), Expr: kv[i+1].(string)})
	}
	return fs
}

func TestTransforms(t *testing.T) {
	type out struct {
		key    any
		fields map[string]any
	}
	for _, tc := range []struct {
		name string
		node spec.Node
		in   []dataflow.Record
		want []out
	}{
		{
			name: "map adds a field",
			node: spec.Node{Name: "m", Map: fields("b", "a * 2")},
			in:   []dataflow.Record{rec(map[string]any{"a": int64(21)})},
			want: []out{{nil, map[string]any{"a": int64(21), "b": int64(42)}}},
		},
		{
			name: "map replaces and sees the input",
			node: spec.Node{Name: "m", Map: fields("a", "a + 1", "b", "a")},
			in:   []dataflow.Record{rec(map[string]any{"a": int64(1), "c": "x"})},
			want: []out{{nil, map[string]any{"a": int64(2), "b": int64(1), "c": "x"}}},
		},
		{
			name: "map of a record without fields",
			node: spec.Node{Name: "m", Map: fields("x", `"lit"`)},
			in:   []dataflow.Record{rec(nil)},
			want: []out{{nil, map[string]any{"x": "lit"}}},
		},
		{
			name: "select keeps exactly its fields",
			node: spec.Node{Name: "s", Select: fields("x", "a", "y", "upper(c)", "z", "$env.missing")},
			in:   []dataflow.Record{rec(map[string]any{"a": int64(1), "c": "x", "d": true})},
			want: []out{{nil, map[string]any{"x": int64(1), "y": "X", "z": nil}}},
		},
		{
			name: "filter",
			node: spec.Node{Name: "f", Filter: "status >= 500 && path != '/health'"},
			in: []dataflow.Record{
				rec(map[string]any{"status": int64(200), "path": "/"}),
				rec(map[string]any{"status": int64(503), "path": "/"}),
				rec(map[string]any{"status": float64(500), "path": "/health"}),
				rec(map[string]any{"status": float64(501), "path": "/a"}),
			},
			want: []out{
				{nil, map[string]any{"status": int64(503), "path": "/"}},
				{nil, map[string]any{"status": float64(501), "path": "/a"}},
			},
		},
		{
			name: "flat_map explode",
			node: spec.Node{Name: "fm", FlatMap: &spec.FlatMap{Explode: "tags", As: "tag"}},
			in: []dataflow.Record{
				rec(map[string]any{"id": int64(1), "tags": []any{"a", int64(2)}}),
				rec(map[string]any{"id": int64(2), "tags": nil}),
				rec(map[string]any{"id": int64(3), "tags": []any{}}),
			},
			want: []out{
				{nil, map[string]any{"id": int64(1), "tags": []any{"a", int64(2)}, "tag": "a"}},
				{nil, map[string]any{"id": int64(1), "tags": []any{"a", int64(2)}, "tag": int64(2)}},
			},
		},
		{
			name: "flat_map split on white space into value",
			node: spec.Node{Name: "fm", FlatMap: &spec.FlatMap{Split: "line"}},
			in:   []dataflow.Record{rec(map[string]any{"line": " to  be\tor "})},
			want: []out{
				{nil, map[string]any{"line": " to  be\tor ", "value": "to"}},
				{nil, map[string]any{"line": " to  be\tor ", "value": "be"}},
				{nil, map[string]any{"line": " to  be\tor ", "value": "or"}},
			},
		},
		{
			name: "flat_map split by separator",
			node: spec.Node{Name: "fm", FlatMap: &spec.FlatMap{Split: "csv", Separator: ",", As: "part"}},
			in:   []dataflow.Record{rec(map[string]any{"csv": "a,,b"})},
			want: []out{
				{nil, map[string]any{"csv": "a,,b", "part": "a"}},
				{nil, map[string]any{"csv": "a,,b", "part": ""}},
				{nil, map[string]any{"csv": "a,,b", "part": "b"}},
			},
		},
		{
			name: "key_by sets the key and keeps the fields",
			node: spec.Node{Name: "k", KeyBy: &spec.KeyBy{Expr: "user"}},
			in: []dataflow.Record{
				rec(map[string]any{"user": "u1", "n": int64(1)}),
				rec(map[string]any{"user": int64(7)}),
				rec(map[string]any{"user": nil}),
			},
			want: []out{
				{"u1", map[string]any{"user": "u1", "n": int64(1)}},
				{int64(7), map[string]any{"user": int64(7)}},
				{nil, map[string]any{"user": nil}},
			},
		},
		{
			name: "key_by expression",
			node: spec.Node{Name: "k", KeyBy: &spec.KeyBy{Expr: `user + "/" + region`}},
			in:   []dataflow.Record{rec(map[string]any{"user": "u1", "region": "eu"})},
			want: []out{{"u1/eu", map[string]any{"user": "u1", "region": "eu"}}},
		},
		{
			name: "union passes through",
			node: spec.Node{Name: "u", Union: &struct{}{}},
			in:   []dataflow.Record{rec(map[string]any{"a": int64(1)})},
			want: []out{{nil, map[string]any{"a": int64(1)}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := harnessFor(t, nil, tc.node)
			if err := h.ProcessRecords(tc.in...); err != nil {
				t.Fatal(err)
			}
			got := h.Records()
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records %v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if !reflect.DeepEqual(g.Fields.Map(), w.fields) || g.Key != w.key {
					t.Errorf("record %d: got key %#v fields %#v, want key %#v fields %#v", i, g.Key, g.Fields, w.key, w.fields)
				}
				if g.Time != 42 || g.Origin != origin {
					t.Errorf("record %d: time %d origin %v not kept", i, g.Time, g.Origin)
				}
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTransformsKeepKeyAndForwardWatermarks(t *testing.T) {
	for _, node := range []spec.Node{
		{Name: "m", Map: fields("b", "1")},
		{Name: "s", Select: fields("b", "1")},
		{Name: "f", Filter: "true"},
		{Name: "fm", FlatMap: &spec.FlatMap{Explode: "[1]"}},
		{Name: "u", Union: &struct{}{}},
	} {
		h := harnessFor(t, nil, node)
		r := rec(map[string]any{"a": int64(1)})
		r.Key = "k"
		if err := h.ProcessRecord(r); err != nil {
			t.Fatal(err)
		}
		if err := h.ProcessWatermark(100); err != nil {
			t.Fatal(err)
		}
		if rs := h.Records(); len(rs) != 1 || rs[0].Key != "k" {
			t.Errorf("%s: key not kept: %v", node.Name, rs)
		}
		if wms := h.Watermarks(); !reflect.DeepEqual(wms, []int64{100}) {
			t.Errorf("%s: watermarks %v", node.Name, wms)
		}
	}
}

func TestTransformErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		node spec.Node
		in   map[string]any
		want string
	}{
		{"map", spec.Node{Name: "m", Map: fields("x", "a + 1")}, map[string]any{"a": "s"}, `field "x"`},
		{"select", spec.Node{Name: "s", Select: fields("x", "a / b")}, map[string]any{"a": "s", "b": true}, `field "x"`},
		{"filter not bool", spec.Node{Name: "f", Filter: "a"}, map[string]any{"a": int64(1)}, "filter"},
		{"explode not a list", spec.Node{Name: "fm", FlatMap: &spec.FlatMap{Explode: "a"}}, map[string]any{"a": "x"}, "wants a list, got string"},
		{"split not a string", spec.Node{Name: "fm", FlatMap: &spec.FlatMap{Split: "a"}}, map[string]any{"a": int64(1)}, "wants a string, got number"},
		{"key_by list", spec.Node{Name: "k", KeyBy: &spec.KeyBy{Expr: "a"}}, map[string]any{"a": []any{int64(1)}}, "key must be"},
		{"key_by map", spec.Node{Name: "k", KeyBy: &spec.KeyBy{Expr: "a"}}, map[string]any{"a": map[string]any{}}, "got map"},
		// A field that does not exist is an error, not null: a misspelt
		// filter must not drop every record uncounted.
		{"filter on a missing field", spec.Node{Name: "f", Filter: "nosuch"}, map[string]any{"a": int64(1)}, `the record has no field: "nosuch"`},
		{"filter comparing a missing field", spec.Node{Name: "f", Filter: "nosuch != 404"}, map[string]any{"a": int64(1)}, `the record has no field: "nosuch"`},
		{"filter on null", spec.Node{Name: "f", Filter: "a"}, map[string]any{"a": nil}, "want a bool, got null"},
		{"map of a missing field", spec.Node{Name: "m", Map: fields("x", "nosuch")}, map[string]any{"a": int64(1)}, `field "x": expression "nosuch": the record has no field`},
		{"key_by a missing field", spec.Node{Name: "k", KeyBy: &spec.KeyBy{Expr: "nosuch"}}, map[string]any{"a": int64(1)}, `the record has no field: "nosuch"`},
		{"map overflow", spec.Node{Name: "m", Map: fields("x", "bytes * 9223372036854775807")}, map[string]any{"bytes": int64(2)}, `field "x": expression "bytes * 9223372036854775807": integer overflow`},
		{"filter overflow", spec.Node{Name: "f", Filter: "a + 1 > 0"}, map[string]any{"a": int64(math.MaxInt64)}, `integer overflow: 9223372036854775807 + 1`},
	} {
		t.Run(tc.name+"/fail", func(t *testing.T) {
			h := harnessFor(t, nil, tc.node)
			err := h.ProcessRecord(rec(tc.in))
			var re *dataflow.RecordError
			if !errors.As(err, &re) || re.Node != tc.node.Name || re.Origin != origin {
				t.Fatalf("got %v, want a RecordError of node %s at %v", err, tc.node.Name, origin)
			}
			for _, s := range []string{"node " + tc.node.Name, "source src record 7", tc.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if len(h.Records()) != 0 {
				t.Errorf("failed record emitted: %v", h.Records())
			}
		})
		t.Run(tc.name+"/skip", func(t *testing.T) {
			ctx := optest.Context(tc.node.Name)
			ctx.OnError = dataflow.SkipOnError{Counters: ctx.Metrics}
			h := harnessFor(t, ctx, tc.node)
			if err := h.ProcessRecord(rec(tc.in)); err != nil {
				t.Fatal(err)
			}
			if n := ctx.Metrics.SkippedInvalid.Load(); n != 1 || len(h.Records()) != 0 {
				t.Errorf("skipped %d, emitted %v; want 1 skipped, none emitted", n, h.Records())
			}
		})
	}
}

// A nil OnError (a context not built by a worker) fails like the default.
func TestNilErrorPolicyFails(t *testing.T) {
	ctx := optest.Context("m")
	ctx.OnError = nil
	h := harnessFor(t, ctx, spec.Node{Name: "m", Map: fields("x", "a + 1")})
	err := h.ProcessRecord(rec(map[string]any{"a": "s"}))
	var re *dataflow.RecordError
	if !errors.As(err, &re) || re.Node != "m" {
		t.Fatalf("got %v, want a RecordError of node m", err)
	}
}

// A policy that returns its own error still names the node.
type plainPolicy struct{}

func (plainPolicy) Handle(*dataflow.Record, []byte, error) error {
	return errors.New("dead letter down")
}

func TestPolicyErrorNamesNode(t *testing.T) {
	ctx := optest.Context("m")
	ctx.OnError = plainPolicy{}
	h := harnessFor(t, ctx, spec.Node{Name: "m", Map: fields("x", "a + 1")})
	err := h.ProcessRecord(rec(map[string]any{"a": "s"}))
	if err == nil || !strings.Contains(err.Error(), "node m") || !strings.Contains(err.Error(), "dead letter down") {
		t.Fatalf("got %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		node spec.Node
		want string
	}{
		{"nothing", spec.Node{Name: "x"}, "no transform"},
		{"two kinds", spec.Node{Name: "x", Filter: "true", Union: &struct{}{}}, "filter, union"},
		{"sink", spec.Node{Name: "x", Sink: &spec.Sink{}}, "not transforms"},
		{"bad expression", spec.Node{Name: "x", Map: fields("a", "1 +")}, `map field "a"`},
		{"empty map", spec.Node{Name: "x", Map: spec.Fields{}}, "no fields"},
		{"duplicate field", spec.Node{Name: "x", Select: fields("a", "1", "a", "2")}, "set twice"},
		{"empty filter expression", spec.Node{Name: "x", Filter: " "}, "empty expression"},
		{"flat_map both", spec.Node{Name: "x", FlatMap: &spec.FlatMap{Explode: "a", Split: "b"}}, "exactly one"},
		{"flat_map none", spec.Node{Name: "x", FlatMap: &spec.FlatMap{}}, "exactly one"},
		{"key_by empty", spec.Node{Name: "x", KeyBy: &spec.KeyBy{}}, "empty expression"},
		{"window no shape", spec.Node{Name: "x", Window: &spec.Window{}}, "tumbling or sliding"},
		{"window both", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Sliding: &spec.Sliding{Size: ms(10), Slide: ms(5)}}}, "not both"},
		{"window sub-ms", spec.Node{Name: "x", Window: &spec.Window{Tumbling: spec.Duration(1500)}}, "milliseconds"},
		{"window zero slide", spec.Node{Name: "x", Window: &spec.Window{Sliding: &spec.Sliding{Size: ms(10)}}}, "slide"},
		{"window too many slides", spec.Node{Name: "x", Window: &spec.Window{Sliding: &spec.Sliding{Size: ms(1001), Slide: ms(1)}}}, "1000 times"},
		{"window late", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Late: "keep"}}, "drop or side_output"},
		{"window negative lateness", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), AllowedLateness: -1}}, "negative"},
		{"aggregate unknown", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("n", "median(x)")}}, "unknown function"},
		{"aggregate no arg", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("n", "sum()")}}, "needs an expression"},
		{"aggregate count arg", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count(x)")}}, "no argument"},
		{"aggregate not a call", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("n", "x")}}, "want count()"},
		{"aggregate two calls", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("n", "sum(a) + sum(b)")}}, "one call"},
		{"aggregate bad expression", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("n", "sum(a +)")}}, `aggregate "n"`},
		{"aggregate name clash", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("window_end", "count()")}}, "used twice"},
		{"aggregate key clash", spec.Node{Name: "x", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("key", "count()")}}, "used twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := &spec.Job{Pipeline: []spec.Node{tc.node}}
			_, err := operator.New(job, &job.Pipeline[0], optest.Context("x"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "node x: ") {
				t.Fatalf("got %v, want an error naming node x and containing %q", err, tc.want)
			}
		})
	}
	if _, err := operator.New(nil, nil, nil); err == nil {
		t.Error("nil node accepted")
	}
}
