package operator_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator"
	"github.com/weir-stream/weir/worker/operator/optest"
)

func ms(n int64) spec.Duration { return spec.Duration(time.Duration(n) * time.Millisecond) }

// kr is a keyed record at event time t.
func kr(key any, t int64, kv ...any) dataflow.Record {
	f := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	return dataflow.Record{Key: key, Time: t, Fields: dataflow.FieldsOf(f), Origin: origin}
}

// windowHarness runs a window fed by key_by(user).
func windowHarness(t *testing.T, ctx *dataflow.Context, w spec.Window) *optest.Harness {
	t.Helper()
	return harnessFor(t, ctx,
		spec.Node{Name: "kb", KeyBy: &spec.KeyBy{Expr: "user"}},
		spec.Node{Name: "win", Window: &w})
}

// res renders a window result compactly: key [start,end) agg=value ...
func res(r dataflow.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v [%v,%v)", r.Fields.Get("user"), r.Fields.Get("window_start"), r.Fields.Get("window_end"))
	for _, name := range []string{"n", "sum", "min", "max", "avg"} {
		if v, ok := r.Fields.Lookup(name); ok {
			fmt.Fprintf(&b, " %s=%v", name, v)
			if v != nil {
				fmt.Fprintf(&b, ":%T", v)
			}
		}
	}
	return b.String()
}

func results(rs []dataflow.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = res(r)
	}
	return out
}

var allAggs = fields("n", "count()", "sum", "sum(v)", "min", "min(v)", "max", "max(v)", "avg", "avg(v)")

// step is one input to a window: a record or (when wm is set) a watermark.
type step struct {
	r  dataflow.Record
	wm int64
}

func wm(w int64) step           { return step{wm: w} }
func in(r dataflow.Record) step { return step{r: r} }
func run(t *testing.T, h *optest.Harness, steps ...step) {
	t.Helper()
	for i, s := range steps {
		var err error
		if s.r.Fields.IsZero() && s.r.Key == nil && s.r.Time == 0 {
			err = h.ProcessWatermark(s.wm)
		} else {
			err = h.ProcessRecord(s.r)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

func TestWindow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		w     spec.Window
		steps []step
		want  []string
		wms   []int64
		late  int64 // DroppedLate
		side  int   // records on the late side output
	}{
		{
			name: "tumbling, every aggregate",
			w:    spec.Window{Tumbling: ms(10), Aggregates: allAggs},
			steps: []step{
				in(kr("a", 1, "v", int64(1))), in(kr("a", 5, "v", 2.5)), in(kr("b", 3, "v", nil)),
				in(kr("a", 12, "v", int64(3))), in(kr("b", 9, "v", nil, "x", int64(1))),
				wm(8), wm(9), wm(19),
			},
			want: []string{
				"a [0,10) n=2:int64 sum=3.5:float64 min=1:int64 max=2.5:float64 avg=1.75:float64",
				"b [0,10) n=2:int64 sum=<nil> min=<nil> max=<nil> avg=<nil>",
				"a [10,20) n=1:int64 sum=3:int64 min=3:int64 max=3:int64 avg=3:float64",
			},
			wms: []int64{8, 9, 19},
		},
		{
			name: "count counts records, sum of ints stays int",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()", "sum", "sum(v)", "avg", "avg(v)")},
			steps: []step{
				in(kr("a", 0, "v", int64(1))), in(kr("a", 1, "v", int64(2))), in(kr("a", 2, "v", nil)), wm(100),
			},
			want: []string{"a [0,10) n=3:int64 sum=3:int64 avg=1.5:float64"},
			wms:  []int64{100},
		},
		{
			name: "min and max of strings",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("min", "min(v)", "max", "max(v)")},
			steps: []step{
				in(kr("a", 0, "v", "pear")), in(kr("a", 1, "v", "apple")), in(kr("a", 2, "v", "zoo")), wm(9),
			},
			want: []string{"a [0,10) min=apple:string max=zoo:string"},
			wms:  []int64{9},
		},
		{
			name: "int sum overflow continues in float",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("sum", "sum(v)")},
			steps: []step{
				in(kr("a", 0, "v", int64(math.MaxInt64))), in(kr("a", 1, "v", int64(1))), wm(9),
			},
			want: []string{"a [0,10) sum=9.223372036854776e+18:float64"},
			wms:  []int64{9},
		},
		{
			name: "negative int sum overflow continues in float, avg too",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("sum", "sum(v)", "avg", "avg(v)")},
			steps: []step{
				in(kr("a", 0, "v", int64(math.MinInt64))), in(kr("a", 1, "v", int64(-1))), in(kr("a", 2, "v", int64(-1))), wm(9),
			},
			want: []string{"a [0,10) sum=-9.223372036854776e+18:float64 avg=-3.0744573456182584e+18:float64"},
			wms:  []int64{9},
		},
		{
			name: "out of order within the bound, negative times",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")},
			steps: []step{
				in(kr("a", 8)), in(kr("a", 2)), in(kr("a", -1)), in(kr("a", 15)), wm(5), in(kr("a", 6)), in(kr("a", -10)), wm(9),
			},
			want: []string{"a [-10,0) n=1:int64", "a [0,10) n=3:int64"},
			wms:  []int64{5, 9},
			late: 1,
		},
		{
			name: "fires in order of end, then key",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")},
			steps: []step{
				in(kr("b", 25)), in(kr(int64(2), 5)), in(kr("a", 15)), in(kr("b", 5)), in(kr(nil, 5)),
				in(kr(1.5, 5)), in(kr(true, 5)), in(kr("a", 5)), in(kr(int64(1), 5)), wm(dataflow.MaxWatermark),
			},
			want: []string{
				"<nil> [0,10) n=1:int64", "true [0,10) n=1:int64", "1 [0,10) n=1:int64", "1.5 [0,10) n=1:int64",
				"2 [0,10) n=1:int64", "a [0,10) n=1:int64", "b [0,10) n=1:int64",
				"a [10,20) n=1:int64", "b [20,30) n=1:int64",
			},
			wms: []int64{dataflow.MaxWatermark},
		},
		{
			name: "Go int keys are int64 keys",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")},
			steps: []step{
				in(kr(1, 1)), in(kr(int64(1), 2)), in(kr(int32(1), 3)), wm(9),
			},
			want: []string{"1 [0,10) n=3:int64"},
			wms:  []int64{9},
		},
		{
			name: "sliding",
			w:    spec.Window{Sliding: &spec.Sliding{Size: ms(10), Slide: ms(5)}, Aggregates: fields("n", "count()", "sum", "sum(v)")},
			steps: []step{
				in(kr("a", 3, "v", int64(1))), in(kr("a", 7, "v", int64(10))), in(kr("a", 12, "v", int64(100))), wm(20),
			},
			want: []string{
				"a [-5,5) n=1:int64 sum=1:int64",
				"a [0,10) n=2:int64 sum=11:int64",
				"a [5,15) n=2:int64 sum=110:int64",
				"a [10,20) n=1:int64 sum=100:int64",
			},
			wms: []int64{20},
		},
		{
			name: "sliding with gaps (slide > size)",
			w:    spec.Window{Sliding: &spec.Sliding{Size: ms(5), Slide: ms(10)}, Aggregates: fields("n", "count()")},
			steps: []step{
				in(kr("a", 3)), in(kr("a", 7)), in(kr("a", 14)), wm(30),
			},
			want: []string{"a [0,5) n=1:int64", "a [10,15) n=1:int64"},
			wms:  []int64{30},
		},
		{
			name: "late records dropped and counted",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")},
			steps: []step{
				in(kr("a", 1)), wm(9), in(kr("a", 9)), in(kr("b", 0)), in(kr("a", 10)), wm(19),
			},
			want: []string{"a [0,10) n=1:int64", "a [10,20) n=1:int64"},
			wms:  []int64{9, 19},
			late: 2,
		},
		{
			name: "late records to the side output",
			w:    spec.Window{Tumbling: ms(10), Late: "side_output", Aggregates: fields("n", "count()")},
			steps: []step{
				in(kr("a", 1)), wm(9), in(kr("a", 9)), in(kr("b", 0)), wm(19),
			},
			want: []string{"a [0,10) n=1:int64"},
			wms:  []int64{9, 19},
			side: 2,
		},
		{
			name: "sliding record late for some windows only is not late",
			w:    spec.Window{Sliding: &spec.Sliding{Size: ms(10), Slide: ms(5)}, Aggregates: fields("n", "count()")},
			steps: []step{
				in(kr("a", 1)), wm(9), in(kr("a", 7)), wm(14),
			},
			want: []string{"a [-5,5) n=1:int64", "a [0,10) n=1:int64", "a [5,15) n=1:int64"},
			wms:  []int64{9, 14},
		},
		{
			name: "allowed lateness fires again, then purges",
			w:    spec.Window{Tumbling: ms(10), AllowedLateness: ms(5), Aggregates: fields("n", "count()", "sum", "sum(v)")},
			steps: []step{
				in(kr("a", 1, "v", int64(1))), wm(9),
				in(kr("a", 3, "v", int64(2))), // late but allowed: fires again
				in(kr("b", 4, "v", int64(5))), // a new key in a fired window fires at once
				wm(13), in(kr("a", 5, "v", int64(4))),
				wm(14), in(kr("a", 6, "v", int64(8))), // past the lateness: dropped
				wm(19),
			},
			want: []string{
				"a [0,10) n=1:int64 sum=1:int64",
				"a [0,10) n=2:int64 sum=3:int64",
				"b [0,10) n=1:int64 sum=5:int64",
				"a [0,10) n=3:int64 sum=7:int64",
			},
			wms:  []int64{9, 13, 14, 19},
			late: 1,
		},
		{
			name: "a watermark that does not advance is not forwarded",
			w:    spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")},
			steps: []step{
				in(kr("a", 1)), wm(9), wm(9), wm(3), wm(10),
			},
			want: []string{"a [0,10) n=1:int64"},
			wms:  []int64{9, 10},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := windowHarness(t, nil, tc.w)
			run(t, h, tc.steps...)
			if got := results(h.Records()); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("results:\n got %q\nwant %q", got, tc.want)
			}
			if got := h.Watermarks(); !reflect.DeepEqual(got, tc.wms) {
				t.Errorf("watermarks: got %v, want %v", got, tc.wms)
			}
			if got := h.Metrics().DroppedLate.Load(); got != tc.late {
				t.Errorf("dropped late: got %d, want %d", got, tc.late)
			}
			if got := len(h.SideOutput("late")); got != tc.side {
				t.Errorf("late side output: got %d, want %d", got, tc.side)
			}
			for _, r := range h.Records() {
				if r.Key != r.Fields.Get("user") || r.Time != r.Fields.Get("window_end").(int64)-1 {
					t.Errorf("result %v: key %v time %d", r.Fields, r.Key, r.Time)
				}
			}
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Results come out before the watermark that fired them.
func TestWindowEmitsBeforeWatermark(t *testing.T) {
	h := windowHarness(t, nil, spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")})
	run(t, h, in(kr("a", 1)), wm(9))
	ev := h.Events()
	if len(ev) != 2 || ev[0].Kind != dataflow.KindRecord || ev[1].Kind != dataflow.KindWatermark {
		t.Fatalf("events %v", ev)
	}
}

// A record behind the watermark of its own source partition is late even
// while the window's watermark (held back by a slower partition) is not
// past its window: lateness then follows the partition's order alone.
func TestWindowLateAgainstSourceWatermark(t *testing.T) {
	h := windowHarness(t, nil, spec.Window{Tumbling: ms(10), AllowedLateness: ms(5), Late: "side_output", Aggregates: fields("n", "count()")})
	onTime := kr("a", 3)
	onTime.SourceWatermark = 7 // window [0,10): 9+5 > 7
	late := kr("a", 4)
	late.SourceWatermark = 14 // 9+5 <= 14: late for [0,10)
	run(t, h, wm(0), in(onTime), in(late), wm(9))
	if got := results(h.Records()); !reflect.DeepEqual(got, []string{"a [0,10) n=1:int64"}) {
		t.Fatalf("results %v", got)
	}
	if side := h.SideOutput("late"); len(side) != 1 || side[0].Time != 4 {
		t.Fatalf("side output %v", side)
	}
}

func TestWindowSideOutputKeepsRecord(t *testing.T) {
	h := windowHarness(t, nil, spec.Window{Tumbling: ms(10), Late: "side_output", Aggregates: fields("n", "count()")})
	late := kr("a", 2, "v", int64(3))
	run(t, h, wm(100), in(late))
	side := h.SideOutput("late")
	if len(side) != 1 || !reflect.DeepEqual(side[0], late) {
		t.Fatalf("side output %v, want %v", side, late)
	}
}

func TestWindowKeyField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []spec.Node
		want  string
	}{
		{"plain field", []spec.Node{{Name: "k", KeyBy: &spec.KeyBy{Expr: " user "}}, {Name: "w"}}, "user"},
		{"expression", []spec.Node{{Name: "k", KeyBy: &spec.KeyBy{Expr: "user + region"}}, {Name: "w"}}, "key"},
		{"as", []spec.Node{{Name: "k", KeyBy: &spec.KeyBy{Expr: "user + region", As: "who"}}, {Name: "w"}}, "who"},
		{"through a filter", []spec.Node{{Name: "k", KeyBy: &spec.KeyBy{Expr: "ip"}}, {Name: "f", Filter: "true"}, {Name: "w"}}, "ip"},
		{"by input name", []spec.Node{
			{Name: "k", KeyBy: &spec.KeyBy{Expr: "ip"}},
			{Name: "k2", KeyBy: &spec.KeyBy{Expr: "host"}},
			{Name: "w", Inputs: []string{"k"}},
		}, "ip"},
		{"default names", []spec.Node{{KeyBy: &spec.KeyBy{Expr: "ip"}}, {Name: "x", Filter: "true"}, {Inputs: []string{"key_by-0"}}}, "ip"},
		{"no key_by", []spec.Node{{Name: "f", Filter: "true"}, {Name: "w"}}, "key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := &tc.nodes[len(tc.nodes)-1]
			last.Window = &spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")}
			h := harnessFor(t, nil, tc.nodes...)
			run(t, h, in(kr("a", 1)), wm(9))
			rs := h.Records()
			if len(rs) != 1 || rs[0].Fields.Get(tc.want) != "a" {
				t.Fatalf("got %v, want the key in field %q", rs, tc.want)
			}
		})
	}
}

func TestWindowErrors(t *testing.T) {
	w := spec.Window{Sliding: &spec.Sliding{Size: ms(10), Slide: ms(5)}, Aggregates: fields("sum", "sum(v)", "min", "min(s)")}
	for _, tc := range []struct {
		name string
		r    dataflow.Record
		want string
	}{
		{"no event time", kr("a", dataflow.NoTime, "v", int64(1)), "no event time"},
		{"time out of range", kr("a", math.MaxInt64-1, "v", int64(1)), "out of range"},
		{"list key", kr([]any{"a"}, 1, "v", int64(1)), "key must be"},
		{"map key", kr(map[string]any{}, 1, "v", int64(1)), "got map"},
		{"NaN key", kr(math.NaN(), 1, "v", int64(1)), "NaN"},
		{"sum of a string", kr("a", 1, "v", "x"), `aggregate "sum": sum wants a number, got string`},
		{"min of a bool", kr("a", 1, "v", nil, "s", true), `aggregate "min": min wants numbers or strings, got bool`},
		{"min of a string after a number", kr("a", 6, "v", int64(1), "s", "x"), "cannot compare string with number"},
		{"eval error", kr("a", 1, "v", map[string]any{}), `aggregate "sum"`},
		{"missing field", kr("a", 1, "s", int64(3)), `aggregate "sum": expression "v": the record has no field: "v"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The failing record must leave no partial update behind.
			for _, skip := range []bool{false, true} {
				ctx := optest.Context("win")
				if skip {
					ctx.OnError = dataflow.SkipOnError{Counters: ctx.Metrics}
				}
				h := windowHarness(t, ctx, w)
				run(t, h, in(kr("a", 1, "v", int64(1), "s", int64(3))))
				err := h.ProcessRecord(tc.r)
				if skip {
					if err != nil || ctx.Metrics.SkippedInvalid.Load() != 1 {
						t.Fatalf("skip: err %v, skipped %d", err, ctx.Metrics.SkippedInvalid.Load())
					}
				} else {
					var re *dataflow.RecordError
					if !errors.As(err, &re) || re.Node != "win" || !strings.Contains(err.Error(), "source src record 7") || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("got %v, want a RecordError of node win containing %q", err, tc.want)
					}
				}
				run(t, h, wm(100))
				want := []string{"a [-5,5) sum=1:int64 min=3:int64", "a [0,10) sum=1:int64 min=3:int64"}
				if got := results(h.Records()); !reflect.DeepEqual(got, want) {
					t.Errorf("after the failed record: got %q, want %q", got, want)
				}
			}
		})
	}
}

func TestWindowEndOfStream(t *testing.T) {
	h := windowHarness(t, nil, spec.Window{Tumbling: ms(10), AllowedLateness: ms(1000), Aggregates: fields("n", "count()")})
	run(t, h, in(kr("a", 1)), in(kr("a", 1e6)))
	if err := h.EndOfStream(); err != nil {
		t.Fatal(err)
	}
	if got := results(h.Records()); len(got) != 2 {
		t.Fatalf("got %q", got)
	}
	if wms := h.Watermarks(); !reflect.DeepEqual(wms, []int64{dataflow.MaxWatermark}) {
		t.Errorf("watermarks %v", wms)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

// A key field named like a window's own field is an error, not a panic
// (spec validation refuses such a job at submit already).
func TestWindowKeyFieldClash(t *testing.T) {
	for _, as := range []string{"window_end", "window_start"} {
		job := &spec.Job{Pipeline: []spec.Node{{Name: "kb", KeyBy: &spec.KeyBy{Expr: "e", As: as}},
			{Name: "win", Window: &spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")}}}}
		_, err := operator.New(job, &job.Pipeline[1], optest.Context("win"))
		if err == nil || !strings.Contains(err.Error(), "clashes with the window's own "+as) {
			t.Errorf("key as %s: got %v", as, err)
		}
	}
}
