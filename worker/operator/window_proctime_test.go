package operator_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator/optest"
)

var procWindow = spec.Window{Tumbling: ms(10), Time: spec.TimeProcessing, Aggregates: fields("n", "count()", "sum", "sum(v)")}

func procHarness(t *testing.T, ctx *dataflow.Context, clock *int64) *optest.Harness {
	t.Helper()
	ctx.Now = func() int64 { return *clock }
	return windowHarness(t, ctx, procWindow)
}

func fireProc(t *testing.T, h *optest.Harness, now int64) {
	t.Helper()
	ph, ok := h.Operator().(dataflow.ProcessingTimeHandler)
	if !ok {
		t.Fatal("a processing-time window is no ProcessingTimeHandler")
	}
	if next, ok := ph.NextProcessingTime(); !ok || next > now {
		return // what the task does: call only when a timer is due
	}
	if err := ph.OnProcessingTime(now, h.Output()); err != nil {
		t.Fatal(err)
	}
}

// Processing-time tumbling windows against a plain-Go model over random
// records, clock advances, timer checks and snapshot/restores at another
// parallelism: every window fires once, when the clock has passed its end
// (or at the end of the stream), with the records that arrived in it.
func TestProcessingTimeWindowModel(t *testing.T) {
	const maxPar = 16
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 7))
		clock := int64(1_000_000 + rng.IntN(20))
		type wk struct {
			key string
			end int64
		}
		type agg struct{ n, sum int64 }
		model := map[wk]*agg{}
		var want []string
		fire := func(upTo int64) {
			var due []wk
			for k := range model {
				if k.end-1 <= upTo {
					due = append(due, k)
				}
			}
			for _, k := range due {
				a := model[k]
				want = append(want, fmt.Sprintf("%s [%d,%d) n=%d:int64 sum=%d:int64", k.key, k.end-10, k.end, a.n, a.sum))
				delete(model, k)
			}
		}
		par := 1 + rng.IntN(3)
		var all []*optest.Harness
		newGen := func(snaps [][]byte) []*optest.Harness {
			hs := make([]*optest.Harness, par)
			for i := range hs {
				hs[i] = procHarness(t, optest.SubtaskContext("win", maxPar, par, i), &clock)
				if snaps != nil {
					if err := hs[i].Restore(snaps...); err != nil {
						t.Fatal(err)
					}
				}
			}
			all = append(all, hs...)
			return hs
		}
		hs := newGen(nil)
		for range 300 {
			switch r := rng.IntN(20); {
			case r < 14:
				key := fmt.Sprintf("k%d", rng.IntN(6))
				v := int64(rng.IntN(100))
				end := clock - clock%10 + 10
				a := model[wk{key, end}]
				if a == nil {
					a = &agg{}
					model[wk{key, end}] = a
				}
				a.n++
				a.sum += v
				i := dataflow.SubtaskForKeyGroup(maxPar, par, dataflow.KeyGroup(key, maxPar))
				if err := hs[i].ProcessRecord(kr(key, dataflow.NoTime, "user", key, "v", v)); err != nil {
					t.Fatal(err)
				}
			case r < 17:
				clock += int64(rng.IntN(8))
			case r < 19:
				fire(clock)
				for _, h := range hs {
					fireProc(t, h, clock)
				}
			default:
				var snaps [][]byte
				for _, h := range hs {
					s, err := h.Snapshot(1)
					if err != nil {
						t.Fatal(err)
					}
					snaps = append(snaps, s)
				}
				par = 1 + rng.IntN(3)
				hs = newGen(snaps)
			}
		}
		fire(1 << 62)
		for _, h := range hs {
			if err := h.ProcessWatermark(dataflow.MaxWatermark); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for _, h := range all {
			got = append(got, results(h.Records())...)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: got\n%q\nwant\n%q", seed, got, want)
		}
	}
}

// Windows fire in order of end, then key, as the clock passes their end,
// and not before; the snapshot of a processing-time window does not
// restore into an event-time one.
func TestProcessingTimeWindowFiresOnClock(t *testing.T) {
	clock := int64(105)
	h := procHarness(t, optest.Context("win"), &clock)
	for _, k := range []string{"b", "a"} {
		if err := h.ProcessRecord(kr(k, dataflow.NoTime, "user", k, "v", int64(1))); err != nil {
			t.Fatal(err)
		}
	}
	clock = 112
	if err := h.ProcessRecord(kr("a", dataflow.NoTime, "user", "a", "v", int64(5))); err != nil {
		t.Fatal(err)
	}
	ph := h.Operator().(dataflow.ProcessingTimeHandler)
	if next, ok := ph.NextProcessingTime(); !ok || next != 109 {
		t.Fatalf("next timer %d %v, want 109", next, ok)
	}
	fireProc(t, h, 108)
	if len(h.Records()) != 0 {
		t.Fatalf("fired before the end: %v", results(h.Records()))
	}
	fireProc(t, h, 119)
	want := []string{"a [100,110) n=1:int64 sum=1:int64", "b [100,110) n=1:int64 sum=1:int64", "a [110,120) n=1:int64 sum=5:int64"}
	if got := results(h.Records()); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	snap, err := h.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	ev := windowHarness(t, optest.Context("win"), spec.Window{Tumbling: ms(10), Aggregates: procWindow.Aggregates})
	if err := ev.Restore(snap); err == nil {
		t.Fatal("a processing-time window's state restored into an event-time window")
	}
}
