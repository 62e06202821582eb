package operator

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator/optest"
)

var runAggs = spec.Fields{{Name: "n", Expr: "count()"}, {Name: "s", Expr: "sum(v)"}, {Name: "lo", Expr: "min(v)"}, {Name: "hi", Expr: "max(v)"}, {Name: "a", Expr: "avg(v)"}}

func runningOp(t testing.TB, ctx *dataflow.Context, r spec.Running) dataflow.Operator {
	t.Helper()
	op, err := New(nil, &spec.Node{Name: "run", Running: &r}, ctx)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func runRec(key any, t int64, v any) dataflow.Record {
	return dataflow.Record{Key: key, Time: t, Fields: dataflow.FieldsOf(map[string]any{"v": v})}
}

func TestRunning(t *testing.T) {
	h := optest.New(t, runningOp(t, nil, spec.Running{Aggregates: runAggs}), nil)
	for _, r := range []dataflow.Record{runRec("a", 5, int64(3)), runRec("b", 6, 2.5), runRec("a", 4, int64(1)), runRec("a", 9, nil)} {
		if err := h.ProcessRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, r := range h.Records() {
		got = append(got, kfmt("", r))
	}
	want := []string{
		"a@5 {key: a, n: 1, s: 3, lo: 3, hi: 3, a: 3}",
		"b@6 {key: b, n: 1, s: 2.5, lo: 2.5, hi: 2.5, a: 2.5}",
		"a@4 {key: a, n: 2, s: 4, lo: 1, hi: 3, a: 2}",
		"a@9 {key: a, n: 3, s: 4, lo: 1, hi: 3, a: 2}", // null is counted by count() only
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if err := h.ProcessWatermark(100); err != nil {
		t.Fatal(err)
	}
	if wms := h.Watermarks(); !reflect.DeepEqual(wms, []int64{100}) {
		t.Errorf("watermarks %v", wms)
	}
}

// A key idle for the TTL (processing time) is forgotten: its next record
// starts from zero, and the state shrinks without records of it.
func TestRunningTTL(t *testing.T) {
	now := int64(1000)
	ctx := optest.Context("run")
	ctx.Now = func() int64 { return now }
	op := runningOp(t, ctx, spec.Running{Aggregates: spec.Fields{{Name: "n", Expr: "count()"}}, TTL: spec.Duration(time.Second)})
	h := optest.New(t, op, ctx)
	step := func(key string, want int64) {
		t.Helper()
		h.Clear()
		if err := h.ProcessRecord(runRec(key, 1, int64(0))); err != nil {
			t.Fatal(err)
		}
		if got := h.Records()[0].Fields.Get("n"); got != want {
			t.Fatalf("%s at %d: count %v, want %d", key, now, got, want)
		}
	}
	step("a", 1)
	now += 999
	step("a", 2) // written at 1999 now: expires at 2999
	now += 1000
	step("a", 1)
	for i := range 10 {
		step(fmt.Sprint("k", i), 1)
	}
	if n := op.(*running).backend.Stats().Entries; n != 11 {
		t.Fatalf("%d keys in state, want 11", n)
	}
	now += 5000
	for i := range int64(10) {
		step("b", i+1) // each record cleans up a few expired keys
	}
	if n := op.(*running).backend.Stats().Entries; n != 1 {
		t.Errorf("%d keys in state after the others' TTL, want 1: cleanup should have dropped them", n)
	}
}

func TestRunningErrors(t *testing.T) {
	h := optest.New(t, runningOp(t, nil, spec.Running{Aggregates: runAggs}), nil)
	if err := h.ProcessRecord(runRec("a", 1, int64(3))); err != nil {
		t.Fatal(err)
	}
	err := h.ProcessRecord(runRec("a", 1, "x"))
	if err == nil || !strings.Contains(err.Error(), `running aggregate "s": sum wants a number`) {
		t.Errorf("string into sum: %v", err)
	}
	h.Clear()
	if err := h.ProcessRecord(runRec("a", 1, int64(5))); err != nil {
		t.Fatal(err)
	}
	// The failed record left nothing behind.
	if got := h.Records()[0].Fields.Get("n"); got != int64(2) {
		t.Errorf("count after a failed record %v, want 2", got)
	}
	if _, err := New(nil, &spec.Node{Name: "r", Running: &spec.Running{Aggregates: spec.Fields{{Name: "x", Expr: "median(v)"}}}}, nil); err == nil {
		t.Error("unknown aggregate accepted")
	}
	// A restore into other aggregates is refused with the reason.
	snap, err := h.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	h2 := optest.New(t, runningOp(t, nil, spec.Running{Aggregates: runAggs[:2]}), nil)
	if err := h2.Restore(snap); err == nil || !strings.Contains(err.Error(), "cannot change across a restore") {
		t.Errorf("restore into fewer aggregates: %v", err)
	}
}

var runShape = dataflow.MustShape("key", "n", "s", "lo", "hi", "a")

// runningModel folds each key's records in plain Go; a key idle for ttl
// (processing time, 0: never) starts afresh.
func runningModel(steps []kstep, ttl int64) map[string][]string {
	type acc struct{ n, cnt, sum, lo, hi, wrote int64 }
	out := map[string][]string{}
	st := map[any]*acc{}
	now := int64(1_000_000)
	for _, s := range steps {
		switch s.kind {
		case 't':
			now += s.advance
			continue
		case 'r':
		default:
			continue
		}
		r := s.rec
		a := st[r.Key]
		if a == nil || ttl > 0 && a.wrote+ttl <= now {
			a = &acc{}
			st[r.Key] = a
		}
		v := r.Fields.Get("v").(int64)
		if a.cnt == 0 || v < a.lo {
			a.lo = v
		}
		if a.cnt == 0 || v > a.hi {
			a.hi = v
		}
		a.n++
		a.cnt++
		a.sum += v
		a.wrote = now
		f := dataflow.NewFields(runShape, []any{r.Key, a.n, a.sum, a.lo, a.hi, float64(a.sum) / float64(a.cnt)})
		k := fmt.Sprint(r.Key)
		out[k] = append(out[k], kfmt("", dataflow.Record{Key: r.Key, Time: r.Time, Fields: f}))
	}
	return out
}

// Property: over random records, watermarks, clock steps and restores at
// changing parallelism, every update is the model's, with and without a
// TTL.
func TestRunningProperty(t *testing.T) {
	for seed := range uint64(30) {
		var ttl int64
		if seed%2 == 1 {
			ttl = 200 + int64(seed)*37
		}
		steps := kgen(seed, 400, true)
		got := krun(t, steps, func(ctx *dataflow.Context) dataflow.Operator {
			return runningOp(t, ctx, spec.Running{Aggregates: runAggs, TTL: spec.Duration(time.Duration(ttl) * time.Millisecond)})
		})
		kcheck(t, seed, got, runningModel(steps, ttl))
	}
}

// The cells decoder refuses damaged snapshots with an error.
func FuzzRunningRestore(f *testing.F) {
	h := optest.New(f, runningOp(f, nil, spec.Running{Aggregates: runAggs}), nil)
	for i := range int64(5) {
		var v any = i
		if i == 3 {
			v = 1.5
		}
		if err := h.ProcessRecord(runRec(fmt.Sprint(i%2), i, v)); err != nil {
			f.Fatal(err)
		}
	}
	snap, err := h.Snapshot(1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(snap)
	f.Fuzz(func(t *testing.T, b []byte) {
		h := optest.New(t, runningOp(t, nil, spec.Running{Aggregates: runAggs}), nil)
		if err := h.Restore(b); err != nil {
			return
		}
		// A restored min over strings refuses a number with an error:
		// what matters is that nothing panics.
		_ = h.ProcessRecord(runRec("0", 1, int64(2)))
	})
}
