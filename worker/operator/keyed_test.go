package operator

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// A keyed scenario drives a keyed operator through records, watermarks
// and restores, at a parallelism that changes with each restore, and
// collects its output per key, for property tests against a plain-Go
// model of the operator.

type kstep struct {
	kind    byte // 'r' record, 'w' watermark, 's' snapshot and restore, 't' processing time
	rec     dataflow.Record
	wm      int64
	par     int   // 's': the parallelism after the restore
	advance int64 // 't': milliseconds the clock moves on
}

// kgen makes a random scenario: n records over a few keys (strings and
// ints) with event times around the watermark, some behind it, carrying
// the watermark as their source watermark as a one-partition source
// would; watermarks that mostly advance; and a restore at another
// parallelism every so often.
func kgen(seed uint64, n int, withClock bool) []kstep {
	rng := rand.New(rand.NewPCG(seed, 7))
	keys := []any{"a", "b", "c", int64(1), int64(2), "d", "e", int64(-3)}
	var steps []kstep
	wm, top := int64(1000), int64(1000)
	for i := range n {
		switch x := rng.IntN(100); {
		case x < 12:
			wm += rng.Int64N(60) - 5 // a watermark that does not advance is ignored
			top = max(top, wm)
			steps = append(steps, kstep{kind: 'w', wm: wm})
		case x < 15:
			steps = append(steps, kstep{kind: 's', par: 1 + rng.IntN(4)})
		case x < 18 && withClock:
			steps = append(steps, kstep{kind: 't', advance: rng.Int64N(400)})
		default:
			k := keys[rng.IntN(len(keys))]
			t := top + rng.Int64N(120) - 15
			fields := dataflow.FieldsOf(map[string]any{"id": int64(i), "v": rng.Int64N(50), "k": k})
			steps = append(steps, kstep{kind: 'r', rec: dataflow.Record{Key: k, Time: t, Fields: fields, SourceWatermark: top}})
		}
	}
	return steps
}

// krun runs the scenario through operators made by mk, starting at
// parallelism 1, and returns what they emitted, main and late output,
// as strings grouped by key in order of emission.
func krun(t *testing.T, steps []kstep, mk func(ctx *dataflow.Context) dataflow.Operator) map[string][]string {
	t.Helper()
	const maxPar = 16
	now := int64(1_000_000)
	clock := func() int64 { return now }
	open := func(par int, snaps [][]byte) []*optest.Harness {
		hs := make([]*optest.Harness, par)
		for i := range hs {
			ctx := optest.SubtaskContext("op", maxPar, par, i)
			ctx.Now = clock
			hs[i] = optest.New(t, mk(ctx), ctx)
			if snaps != nil {
				// Every new subtask gets every old state, as after rescaling.
				if err := hs[i].Restore(snaps...); err != nil {
					t.Fatalf("restore: %v", err)
				}
			}
		}
		return hs
	}
	out := map[string][]string{}
	collect := func(hs []*optest.Harness) {
		for _, h := range hs {
			for _, e := range h.Events() {
				if e.Kind != dataflow.KindRecord {
					continue
				}
				k := fmt.Sprint(e.Record.Key)
				out[k] = append(out[k], kfmt(e.Tag, e.Record))
			}
			h.Clear()
		}
	}
	hs := open(1, nil)
	for i, s := range steps {
		var err error
		switch s.kind {
		case 'r':
			sub := dataflow.SubtaskForKeyGroup(maxPar, len(hs), dataflow.KeyGroup(s.rec.Key, maxPar))
			err = hs[sub].ProcessRecord(s.rec)
		case 'w':
			for _, h := range hs {
				if err = h.ProcessWatermark(s.wm); err != nil {
					break
				}
			}
		case 't':
			now += s.advance
			for _, h := range hs {
				if p, ok := h.Operator().(dataflow.ProcessingTimeHandler); ok {
					if next, ok := p.NextProcessingTime(); ok && next <= now {
						if err = p.OnProcessingTime(now, h.Output()); err != nil {
							break
						}
					}
				}
			}
		case 's':
			var snaps [][]byte
			for _, h := range hs {
				b, err := h.Snapshot(int64(i))
				if err != nil {
					t.Fatalf("step %d: snapshot: %v", i, err)
				}
				snaps = append(snaps, b)
			}
			collect(hs)
			hs = open(s.par, snaps)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	for _, h := range hs {
		if err := h.EndOfStream(); err != nil {
			t.Fatal(err)
		}
	}
	collect(hs)
	return out
}

func kfmt(tag string, r dataflow.Record) string {
	s := fmt.Sprintf("%v@%d %v", r.Key, r.Time, r.Fields)
	if tag != "" {
		s = tag + ": " + s
	}
	return s
}

// kcheck compares a run with the model's output, key by key.
func kcheck(t *testing.T, seed uint64, got, want map[string][]string) {
	t.Helper()
	for k := range want {
		if len(want[k]) == 0 {
			delete(want, k)
		}
	}
	if reflect.DeepEqual(got, want) {
		return
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok && !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Fatalf("seed %d key %s:\n got %q\nwant %q", seed, k, got[k], want[k])
		}
	}
}

func kms(n int64) spec.Duration { return spec.Duration(time.Duration(n) * time.Millisecond) }
