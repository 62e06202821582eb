package operator

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator/optest"
)

func dedupOp(t testing.TB, ctx *dataflow.Context, d spec.Dedup) dataflow.Operator {
	t.Helper()
	op, err := New(nil, &spec.Node{Name: "dd", Dedup: &d}, ctx)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func ddRec(key any, t int64) dataflow.Record {
	return dataflow.Record{Key: key, Time: t, Fields: dataflow.FieldsOf(map[string]any{"k": key, "t": t})}
}

func ddTimes(rs []dataflow.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%v@%d", r.Key, r.Time))
	}
	return out
}

func TestDedup(t *testing.T) {
	h := optest.New(t, dedupOp(t, nil, spec.Dedup{Within: kms(10), Late: "side_output"}), nil)
	steps := []struct {
		rec  *dataflow.Record
		wm   int64
		want []string // main output after the step
	}{
		{rec: ptr(ddRec("a", 100)), want: []string{"a@100"}},
		{rec: ptr(ddRec("a", 105)), want: nil},               // within 10ms of 100
		{rec: ptr(ddRec("a", 95)), want: nil},                // earlier, but after a passed record
		{rec: ptr(ddRec("b", 101)), want: []string{"b@101"}}, // another key
		{rec: ptr(ddRec("a", 109)), want: nil},
		{rec: ptr(ddRec("a", 110)), want: []string{"a@110"}}, // the bound is over: passes, remembered until 120
		{rec: ptr(ddRec("a", 119)), want: nil},
		{wm: 118},
		{rec: ptr(ddRec("a", 119)), want: nil}, // still remembered: the timer is at 119
		{wm: 119},
		{rec: ptr(ddRec("a", 120)), want: []string{"a@120"}},
		{rec: ptr(ddRec("b", 119)), want: nil}, // late: to the side output
	}
	for i, s := range steps {
		h.Clear()
		var err error
		if s.rec != nil {
			err = h.ProcessRecord(*s.rec)
		} else {
			err = h.ProcessWatermark(s.wm)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := ddTimes(h.Records()); !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: got %v, want %v", i, got, s.want)
		}
	}
	if got := ddTimes(h.SideOutput(LateTag)); !reflect.DeepEqual(got, []string{"b@119"}) {
		t.Errorf("late side output %v, want [b@119]", got)
	}
}

func ptr[T any](v T) *T { return &v }

// Once the watermark passes every key's bound, the state is empty: the
// event-time timers dropped it.
func TestDedupStateCleanedByWatermark(t *testing.T) {
	op := dedupOp(t, nil, spec.Dedup{Within: kms(1000)})
	h := optest.New(t, op, nil)
	for i := range int64(500) {
		if err := h.ProcessRecord(ddRec(fmt.Sprint("k", i), 10*i)); err != nil {
			t.Fatal(err)
		}
	}
	d := op.(*dedup)
	if n := d.backend.Stats().Entries; n != 500 {
		t.Fatalf("%d entries, want 500", n)
	}
	if err := h.ProcessWatermark(3000); err != nil {
		t.Fatal(err)
	}
	// Keys at 10i with 10i+999 <= 3000 are forgotten: i <= 200.
	if n := d.backend.Stats().Entries; n != 299 {
		t.Fatalf("after watermark 3000: %d entries, want 299", n)
	}
	if err := h.ProcessWatermark(10_000); err != nil {
		t.Fatal(err)
	}
	if s := d.backend.Stats(); s.Entries != 0 || s.Timers != 0 {
		t.Fatalf("after the last bound: %+v, want no state", s)
	}
	if got := h.Watermarks(); !reflect.DeepEqual(got, []int64{3000, 10_000}) {
		t.Errorf("watermarks %v", got)
	}
	if got := h.Metrics().DroppedLate.Load(); got != 0 {
		t.Errorf("dropped late %d", got)
	}
	if err := h.ProcessRecord(ddRec("k1", 5)); err != nil {
		t.Fatal(err)
	}
	if got := h.Metrics().DroppedLate.Load(); got != 1 {
		t.Errorf("a late record with late: drop: dropped late %d, want 1", got)
	}
}

func TestDedupErrors(t *testing.T) {
	h := optest.New(t, dedupOp(t, nil, spec.Dedup{Within: kms(10)}), nil)
	err := h.ProcessRecord(dataflow.Record{Key: "a", Time: dataflow.NoTime})
	if err == nil || !strings.Contains(err.Error(), "no event time") {
		t.Errorf("record without time: %v", err)
	}
	err = h.ProcessRecord(dataflow.Record{Key: []any{1}, Time: 5})
	if err == nil || !strings.Contains(err.Error(), "key_by") {
		t.Errorf("bad key: %v", err)
	}
	if _, err := New(nil, &spec.Node{Name: "dd", Dedup: &spec.Dedup{}}, nil); err == nil {
		t.Error("within 0 accepted")
	}
}

// dedupModel is the operator's definition in plain Go: a record passes
// when it is not late and its time is at least within after the last
// passed record of its key.
func dedupModel(steps []kstep, within int64, side bool) map[string][]string {
	out := map[string][]string{}
	until := map[any]int64{}
	for _, s := range steps {
		if s.kind != 'r' {
			continue
		}
		r := s.rec
		k := fmt.Sprint(r.Key)
		switch u, ok := until[r.Key]; {
		case r.Time <= r.SourceWatermark:
			if side {
				out[k] = append(out[k], kfmt(LateTag, r))
			}
		case ok && r.Time < u:
		default:
			until[r.Key] = r.Time + within
			out[k] = append(out[k], kfmt("", r))
		}
	}
	return out
}

// Property: over random records, watermarks and restores at changing
// parallelism (key groups split and merged), the output is the model's.
func TestDedupProperty(t *testing.T) {
	for seed := range uint64(30) {
		within := int64(1 + seed*7%90)
		side := seed%2 == 0
		late := "drop"
		if side {
			late = "side_output"
		}
		steps := kgen(seed, 400, false)
		got := krun(t, steps, func(ctx *dataflow.Context) dataflow.Operator {
			return dedupOp(t, ctx, spec.Dedup{Within: kms(within), Late: late})
		})
		kcheck(t, seed, got, dedupModel(steps, within, side))
	}
}
