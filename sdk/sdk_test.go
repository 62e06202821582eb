package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

type typed struct {
	Name   string         `weir:"name"`
	N      int32          `weir:"n"`
	U      uint8          `weir:"u"`
	F      float64        `weir:"f"`
	OK     bool           `weir:"ok"`
	Any    any            `weir:"any"`
	Tags   []string       `weir:"tags"`
	M      map[string]any `weir:"m"`
	Skip   string         `weir:"-"`
	GoName string
	hidden int
}

func TestStructMapping(t *testing.T) {
	rt, err := recordTypeOf[typed]()
	if err != nil {
		t.Fatal(err)
	}
	in := typed{Name: "x", N: -3, U: 200, F: 1.5, OK: true, Any: "a", Tags: []string{"p"}, M: map[string]any{"k": int64(1)}, Skip: "no", GoName: "g", hidden: 1}
	f := encode(rt, &in)
	if got := f.Shape().Len(); got != 9 {
		t.Fatalf("%d fields: %v", got, f)
	}
	if f.Get("GoName") != "g" || f.Get("n") != int64(-3) || f.Get("u") != int64(200) {
		t.Fatalf("encoded %v", f)
	}
	d := decoder[typed]{rt: rt}
	out, err := d.decode(f)
	if err != nil {
		t.Fatal(err)
	}
	in.Skip, in.hidden = "", 0
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Fatalf("round trip %+v, want %+v", out, in)
	}
	// Another shape: missing and null fields are zero; integral floats are
	// integers.
	out, err = d.decode(dataflow.FieldsOf(map[string]any{"n": 7.0, "name": nil, "other": 1}))
	if err != nil || out.N != 7 || out.Name != "" {
		t.Fatalf("decoded %+v, %v", out, err)
	}
	for _, c := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"name": int64(1)}, `field "name": want a string, got a number`},
		{map[string]any{"n": 1.5}, `field "n": want an integer`},
		{map[string]any{"u": int64(300)}, `field "u": 300 out of range`},
		{map[string]any{"tags": []any{"a", int64(1)}}, `field "tags": element 1`},
	} {
		if _, err := d.decode(dataflow.FieldsOf(c.m)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.m, err, c.want)
		}
	}
	type bad struct {
		C chan int
	}
	if _, err := recordTypeOf[bad](); err == nil {
		t.Fatal("a chan field accepted")
	}
	if _, err := recordTypeOf[int](); err == nil {
		t.Fatal("int accepted as a record")
	}
}

// fn is a ProcessFunction driven by closures.
type fn struct {
	open    func(*OpenContext) error
	process func(*Context, Record, *Collector[Record]) error
	timer   func(*Context, Timer, *Collector[Record]) error
}

func (f *fn) Open(ctx *OpenContext) error {
	if f.open != nil {
		return f.open(ctx)
	}
	return nil
}

func (f *fn) ProcessElement(ctx *Context, in Record, out *Collector[Record]) error {
	return f.process(ctx, in, out)
}

func (f *fn) OnTimer(ctx *Context, t Timer, out *Collector[Record]) error {
	if f.timer != nil {
		return f.timer(ctx, t, out)
	}
	return nil
}

func TestPanicsFailTheTaskWithTheStack(t *testing.T) {
	op := newProcessOp[Record, Record]("t.panic", &fn{process: func(*Context, Record, *Collector[Record]) error {
		var m map[string]int
		m["x"] = 1 // nil map write
		return nil
	}}, &recordType{isRecord: true}, &recordType{isRecord: true}, &dataflow.Context{Node: "p", OnError: dataflow.SkipOnError{Counters: &dataflow.Counters{}}}, nil)
	if err := op.Open(nil); err != nil {
		t.Fatal(err)
	}
	r := dataflow.Record{Key: "k", Fields: dataflow.FieldsOf(map[string]any{"a": int64(1)})}
	err := op.Process(&r, &recorder{side: map[string][]Emitted[Record]{}})
	var p *userPanic
	if !errors.As(err, &p) || !strings.Contains(err.Error(), "assignment to entry in nil map") || !strings.Contains(err.Error(), "sdk_test.go") {
		t.Fatalf("error %v, want the panic with its stack despite on_error skip", err)
	}
}

func TestErrorsGoToTheErrorPolicy(t *testing.T) {
	counters := &dataflow.Counters{}
	op := newProcessOp[Record, Record]("t.err", &fn{process: func(_ *Context, in Record, out *Collector[Record]) error {
		if in.Get("bad") == true {
			return errors.New("bad record")
		}
		return out.Emit(in)
	}}, &recordType{isRecord: true}, &recordType{isRecord: true}, &dataflow.Context{Node: "p", OnError: dataflow.SkipOnError{Counters: counters}}, nil)
	_ = op.Open(nil)
	rec := &recorder{side: map[string][]Emitted[Record]{}}
	for _, bad := range []bool{true, false} {
		r := dataflow.Record{Key: "k", Fields: dataflow.FieldsOf(map[string]any{"bad": bad})}
		if err := op.Process(&r, rec); err != nil {
			t.Fatal(err)
		}
	}
	if counters.SkippedInvalid.Load() != 1 || len(rec.main) != 1 {
		t.Fatalf("skipped %d, emitted %d", counters.SkippedInvalid.Load(), len(rec.main))
	}
	// A key state cannot hold fails the record too.
	r := dataflow.Record{Key: []any{1}, Fields: dataflow.FieldsOf(nil)}
	if err := op.Process(&r, rec); err != nil || counters.SkippedInvalid.Load() != 2 {
		t.Fatalf("list key: %v, skipped %d", err, counters.SkippedInvalid.Load())
	}
}

func TestStateOutsideACall(t *testing.T) {
	var v *Value[int64]
	var got error
	h, err := NewTestHarness[Record, Record](&fn{
		open: func(ctx *OpenContext) (err error) {
			if v, err = NewValue(ctx, ValueDescriptor[int64]{Name: "v"}); err != nil {
				return err
			}
			got = v.Update(1)
			return nil
		},
		process: func(*Context, Record, *Collector[Record]) error { return v.Update(2) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(got, ErrNoKey) {
		t.Fatalf("Update in Open: %v", got)
	}
	if err := h.Process("k", 0, Record{}); err != nil {
		t.Fatal(err)
	}
}

// counter counts per key, emits on an event-time timer 10 ms after the
// key's first record, and on a processing-time timer at 1000.
func counter() *fn {
	var n *Value[int64]
	return &fn{
		open: func(ctx *OpenContext) (err error) {
			n, err = NewValue(ctx, ValueDescriptor[int64]{Name: "n"})
			return err
		},
		process: func(ctx *Context, _ Record, _ *Collector[Record]) error {
			c, ok, err := n.Get()
			if err != nil {
				return err
			}
			if !ok {
				ctx.Timers().RegisterEventTimeTimer(ctx.Timestamp() + 10)
				ctx.Timers().RegisterProcessingTimeTimer(1000)
			}
			return n.Update(c + 1)
		},
		timer: func(ctx *Context, t Timer, out *Collector[Record]) error {
			c, _, err := n.Get()
			if err != nil {
				return err
			}
			if t.Domain == EventTime {
				_ = n.Clear()
			}
			return out.Emit(NewRecord(map[string]any{"key": ctx.Key(), "n": c, "domain": t.Domain.String()}))
		},
	}
}

func TestTimersAndRestoreAtAnotherParallelism(t *testing.T) {
	h, err := NewTestHarness[Record, Record](counter(), WithSubtask(16, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for i, k := range keys {
		for range i + 1 {
			if err := h.Process(k, 100, Record{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	snap, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for sub := range 3 {
		hs, err := NewTestHarness[Record, Record](counter(), WithSubtask(16, 3, sub), WithRestore(snap))
		if err != nil {
			t.Fatal(err)
		}
		if err := hs.Watermark(200); err != nil {
			t.Fatal(err)
		}
		if err := hs.SetProcessingTime(1000); err != nil {
			t.Fatal(err)
		}
		out, _ := hs.Output()
		for _, e := range out {
			k := e.Value.Get("key").(string)
			got[k] += fmt.Sprintf("%s=%v@%d;", e.Value.Get("domain"), e.Value.Get("n"), e.Time)
		}
		if wms := hs.Watermarks(); len(wms) != 1 || wms[0] != 200 {
			t.Fatalf("watermarks forwarded: %v", wms)
		}
	}
	for i, k := range keys {
		// The event-time timer fires with the count and clears it; the
		// processing-time one then finds nothing.
		want := fmt.Sprintf("event time=%d@110;processing time=0@%d;", i+1, NoTimestamp)
		if got[k] != want {
			t.Errorf("key %s: %q, want %q", k, got[k], want)
		}
	}
}

type cfg struct {
	Limit int    `json:"limit"`
	Name  string `json:"name"`
}

func (c cfg) Validate() error {
	var errs []error
	if c.Limit <= 0 {
		errs = append(errs, ConfigError("limit", "must be positive, got %d", c.Limit))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	return errors.Join(errs...)
}

func TestConfigErrorsCarryTheSpecPath(t *testing.T) {
	RegisterProcess("sdktest.limit", func(c cfg) (ProcessFunction[Record, Record], error) { return counter(), nil })
	t.Cleanup(func() { registry.Unregister("sdktest.limit") })
	job := func(config string) *spec.Job {
		j, err := spec.Parse([]byte(`
name: j
pipeline:
  - source: {datagen: {count: 1}}
  - key_by: id
  - process: {operator: sdktest.limit` + config + `}
  - sink: {stdout: {}}
`))
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	for _, c := range []struct{ config, want string }{
		{"", "pipeline[2].process.config.limit: must be positive, got 0\npipeline[2].process.config: name is required"},
		{", config: {limit: 2, name: x, extra: 1}", "pipeline[2].process.config.extra: unknown field"},
		{", config: {limit: two, name: x}", "pipeline[2].process.config.limit: want int, got a string"},
		{", config: {limit: 2, name: x}", ""},
	} {
		err := registry.CheckJob(job(c.config))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("config %q: %q, want %q", c.config, got, c.want)
		}
	}
	j := job("")
	j.Pipeline[2].Process.Operator = "sdktest.nope"
	if err := registry.CheckJob(j); err == nil || !strings.Contains(err.Error(), `pipeline[2].process.operator: no operator "sdktest.nope" in this weir binary; it has`) ||
		!strings.Contains(err.Error(), "sdktest.limit") {
		t.Fatalf("unknown operator: %v", err)
	}
	ops := Operators()
	found := false
	for _, o := range ops {
		if o.ID == "sdktest.limit" {
			found = true
			if o.Package != "github.com/weir-stream/weir/sdk" || o.Module != "github.com/weir-stream/weir" {
				t.Errorf("registered by %+v", o)
			}
		}
	}
	if !found {
		t.Fatalf("operators %v", ops)
	}
}

func TestRegisterRefusesBadIDsAndDuplicates(t *testing.T) {
	factory := func(struct{}) (ProcessFunction[Record, Record], error) { return counter(), nil }
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", what)
			}
		}()
		f()
	}
	mustPanic("no namespace", func() { RegisterProcess("dedup", factory) })
	mustPanic("upper case", func() { RegisterProcess("Acme.Dedup", factory) })
	RegisterProcess("sdktest.dup", factory)
	t.Cleanup(func() { registry.Unregister("sdktest.dup") })
	mustPanic("duplicate", func() { RegisterProcess("sdktest.dup", factory) })
}

func TestMetricsAndSideOutputs(t *testing.T) {
	side := NewSideOutput[Record]("odd")
	var c *Counter
	var g *Gauge
	var hist *Histogram
	h, err := NewTestHarness[Record, Record](&fn{
		open: func(ctx *OpenContext) error {
			m := ctx.Metrics()
			c, g, hist = m.Counter("seen_total", "h"), m.Gauge("last", "h"), m.Histogram("sizes", "h", 1, 10)
			return nil
		},
		process: func(ctx *Context, in Record, out *Collector[Record]) error {
			c.Inc()
			v := in.Get("v").(int64)
			g.Set(float64(v))
			hist.Observe(float64(v))
			if v%2 == 1 {
				return side.Emit(ctx, in)
			}
			return out.Emit(in)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_ = h.Process("k", int64(i), NewRecord(map[string]any{"v": i}))
	}
	if n := len(h.SideOutput("odd")); n != 2 {
		t.Fatalf("%d on the side output", n)
	}
	if c.m.Value() != 5 || g.m.Value() != 4 {
		t.Fatalf("counter %v gauge %v", c.m.Value(), g.m.Value())
	}
	if n, sum, b := hist.m.Histogram(); n != 5 || sum != 10 || b[1] != 2 || b[10] != 5 {
		t.Fatalf("histogram %d %v %v", n, sum, b)
	}
	_, err = NewTestHarness[Record, Record](&fn{open: func(ctx *OpenContext) error {
		ctx.Metrics().Counter("Bad-Name", "")
		return nil
	}})
	if err == nil || !strings.Contains(err.Error(), `metric name "Bad-Name"`) {
		t.Fatalf("bad metric name: %v", err)
	}
}

type listening struct {
	fn
	completed []int64
	closed    bool
}

func (l *listening) CheckpointComplete(_ context.Context, id int64) error {
	l.completed = append(l.completed, id)
	if id == 3 {
		panic("boom")
	}
	return nil
}

func (l *listening) Close() error { l.closed = true; return nil }

func TestCheckpointListenerAndClose(t *testing.T) {
	l := &listening{fn: fn{process: func(*Context, Record, *Collector[Record]) error { return nil }}}
	op := newProcessOp[Record, Record]("t.listen", l, &recordType{isRecord: true}, &recordType{isRecord: true}, &dataflow.Context{Node: "p"}, nil)
	if err := op.Open(nil); err != nil {
		t.Fatal(err)
	}
	var _ dataflow.CheckpointListener = op
	var _ dataflow.ProcessingTimeHandler = op
	var _ dataflow.WatermarkHandler = op
	var _ dataflow.Snapshotter = op
	if err := op.NotifyCheckpointComplete(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	var p *userPanic
	if err := op.NotifyCheckpointComplete(context.Background(), 3); !errors.As(err, &p) {
		t.Fatalf("a panic in CheckpointComplete: %v", err)
	}
	if err := op.Close(nil); err != nil || !l.closed {
		t.Fatalf("close: %v %v", err, l.closed)
	}
	if fmt.Sprint(l.completed) != "[2 3]" {
		t.Fatalf("completed %v", l.completed)
	}
}

type avg struct{}

func (avg) CreateAccumulator() [2]float64            { return [2]float64{} }
func (avg) Add(acc [2]float64, v float64) [2]float64 { return [2]float64{acc[0] + v, acc[1] + 1} }
func (avg) Result(acc [2]float64) float64            { return acc[0] / acc[1] }

// allStates keeps every kind of state per key and emits a summary of it.
func allStates() *fn {
	var (
		list *List[string]
		max  *Reducing[int64]
		mean *Aggregating[float64, [2]float64, float64]
		m    *Map[string, int64]
	)
	return &fn{
		open: func(ctx *OpenContext) (err error) {
			if list, err = NewList(ctx, ListDescriptor[string]{Name: "list"}); err != nil {
				return err
			}
			if max, err = NewReducing(ctx, ReducingDescriptor[int64]{Name: "max", Reduce: func(a, b int64) int64 { return maxOf(a, b) }}); err != nil {
				return err
			}
			if mean, err = NewAggregating(ctx, AggregatingDescriptor[float64, [2]float64, float64]{Name: "mean", Aggregator: avg{}}); err != nil {
				return err
			}
			m, err = NewMap(ctx, MapDescriptor[string, int64]{Name: "m"})
			return err
		},
		process: func(ctx *Context, in Record, out *Collector[Record]) error {
			v := in.Get("v").(int64)
			_ = list.Add(fmt.Sprint(v))
			_ = max.Add(v)
			_ = mean.Add(float64(v))
			n, _, _ := m.Get("n")
			_ = m.Put("n", n+1)
			if in.Get("emit") != true {
				return nil
			}
			l, _ := list.Get()
			mx, _, _ := max.Get()
			mn, _, _ := mean.Get()
			size, _ := m.Len()
			return out.Emit(NewRecord(map[string]any{"list": fmt.Sprint(l), "max": mx, "mean": mn, "n": n + 1, "size": size}))
		},
	}
}

func maxOf(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func TestEveryStateKindSurvivesARestore(t *testing.T) {
	h, err := NewTestHarness[Record, Record](allStates())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{3, 9, 6} {
		if err := h.Process("k", 0, NewRecord(map[string]any{"v": v})); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h2, err := NewTestHarness[Record, Record](allStates(), WithRestore(snap))
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Process("k", 0, NewRecord(map[string]any{"v": 2, "emit": true})); err != nil {
		t.Fatal(err)
	}
	out, _ := h2.Output()
	if len(out) != 1 || out[0].Value.String() != "{list: [3 9 6 2], max: 9, mean: 5, n: 4, size: 1}" {
		t.Fatalf("output %v", out)
	}
	// A state restored as another kind is refused, naming both.
	_, err = NewTestHarness[Record, Record](&fn{open: func(ctx *OpenContext) error {
		_, err := NewValue(ctx, ValueDescriptor[int64]{Name: "max"})
		return err
	}}, WithRestore(snap))
	if err == nil || !strings.Contains(err.Error(), `state "max" is a reducing state in the snapshot and a value state in the operator`) {
		t.Fatalf("kind change: %v", err)
	}
}

// The operator snapshots asynchronously: what the encoding writes after
// more records changed the state is the state at the capture.
func TestAsyncSnapshotIsTheStateAtTheBarrier(t *testing.T) {
	h, err := NewTestHarness[Record, Record](allStates())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{3, 9, 6} {
		if err := h.Process("k", 0, NewRecord(map[string]any{"v": v})); err != nil {
			t.Fatal(err)
		}
	}
	var op dataflow.Operator = h.op
	as, ok := op.(dataflow.AsyncSnapshotter)
	if !ok {
		t.Fatal("the SDK operator is not a dataflow.AsyncSnapshotter")
	}
	encode, err := as.CaptureSnapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{100, 1} { // after the barrier
		if err := h.Process("k", 0, NewRecord(map[string]any{"v": v})); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan []byte)
	go func() {
		b, _, err := encode()
		if err != nil {
			t.Error(err)
		}
		done <- b
	}()
	if err := h.Process("k", 0, NewRecord(map[string]any{"v": 50})); err != nil {
		t.Fatal(err)
	}
	snap := <-done
	h2, err := NewTestHarness[Record, Record](allStates(), WithRestore(snap))
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Process("k", 0, NewRecord(map[string]any{"v": 2, "emit": true})); err != nil {
		t.Fatal(err)
	}
	out, _ := h2.Output()
	if len(out) != 1 || out[0].Value.String() != "{list: [3 9 6 2], max: 9, mean: 5, n: 4, size: 1}" {
		t.Fatalf("output %v", out)
	}
}
