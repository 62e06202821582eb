package operator_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator"
	"github.com/weir-stream/weir/worker/operator/optest"
)

var stateWindow = spec.Window{
	Sliding:         &spec.Sliding{Size: ms(20), Slide: ms(10)},
	AllowedLateness: ms(15),
	Late:            "side_output",
	Aggregates:      allAggs,
}

// workload is a deterministic stream of records and watermarks: mixed key
// types, out-of-order times, ints, floats, strings and nulls.
func workload(seed uint64, n int) []step {
	rng := rand.New(rand.NewPCG(seed, 1))
	keys := []any{nil, true, int64(-3), int64(7), 2.5, "a", "b", "c", "long key ünïcode"}
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("k%02d", i))
	}
	var steps []step
	frontier := int64(-50)
	for i := range n {
		frontier += int64(rng.IntN(4))
		t := frontier - int64(rng.IntN(40)) // some late, some within lateness
		var v any
		switch rng.IntN(5) {
		case 0:
			v = nil
		case 1:
			v = rng.Float64() * 100
		default:
			v = int64(rng.IntN(1000) - 100)
		}
		steps = append(steps, in(kr(keys[rng.IntN(len(keys))], t, "v", v, "i", int64(i))))
		if rng.IntN(8) == 0 {
			steps = append(steps, wm(frontier-10))
		}
	}
	return append(steps, wm(dataflow.MaxWatermark))
}

func stateHarness(t *testing.T, ctx *dataflow.Context) *optest.Harness {
	if ctx == nil {
		ctx = optest.Context("win")
	}
	return windowHarness(t, ctx, stateWindow)
}

// outputs renders main and side output as sorted lines, for comparing runs
// whose subtasks interleave differently.
func outputs(hs ...*optest.Harness) []string {
	var out []string
	for _, h := range hs {
		out = append(out, results(h.Records())...)
		for _, r := range h.SideOutput("late") {
			out = append(out, fmt.Sprintf("late %v", r.Fields.Get("i")))
		}
	}
	slices.Sort(out)
	return out
}

func reference(t *testing.T, steps []step) []string {
	h := stateHarness(t, nil)
	run(t, h, steps...)
	return outputs(h)
}

func TestSnapshotRestoreSameResults(t *testing.T) {
	steps := workload(1, 600)
	h := stateHarness(t, nil)
	run(t, h, steps...)
	want := results(h.Records())
	wantSide := len(h.SideOutput("late"))
	if len(want) < 100 || wantSide == 0 {
		t.Fatalf("workload too tame: %d results, %d late", len(want), wantSide)
	}
	for _, k := range []int{0, 1, 50, 333, len(steps) - 1} {
		a := stateHarness(t, nil)
		run(t, a, steps[:k]...)
		snap, err := a.Snapshot(1)
		if err != nil {
			t.Fatal(err)
		}
		b := stateHarness(t, nil)
		if err := b.Restore(snap); err != nil {
			t.Fatalf("restore at %d: %v", k, err)
		}
		again, err := b.Snapshot(2)
		if err != nil || !bytes.Equal(again, snap) {
			t.Fatalf("snapshot after restore at %d differs (%v)", k, err)
		}
		run(t, b, steps[k:]...)
		got := append(results(a.Records()), results(b.Records())...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("split at step %d: results differ from an uninterrupted run\n got %q\nwant %q", k, got, want)
		}
		if side := len(a.SideOutput("late")) + len(b.SideOutput("late")); side != wantSide {
			t.Errorf("split at step %d: %d late records, want %d", k, side, wantSide)
		}
	}
}

// route runs steps over n subtasks as hash partitioning would: records to
// the subtask owning their key group, watermarks to all.
func route(t *testing.T, hs []*optest.Harness, maxPar int, steps []step) {
	t.Helper()
	for _, s := range steps {
		if s.r.Fields.IsZero() {
			for _, h := range hs {
				run(t, h, s)
			}
			continue
		}
		i := dataflow.SubtaskForKeyGroup(maxPar, len(hs), dataflow.KeyGroup(s.r.Key, maxPar))
		run(t, hs[i], s)
	}
}

func TestRescaleRestore(t *testing.T) {
	const maxPar = 16
	steps := workload(2, 500)
	want := reference(t, steps)
	for _, tc := range []struct{ from, to int }{{2, 1}, {1, 2}, {3, 2}, {2, 3}, {1, 16}} {
		t.Run(fmt.Sprintf("%d to %d", tc.from, tc.to), func(t *testing.T) {
			for _, k := range []int{100, 300} {
				old := make([]*optest.Harness, tc.from)
				for i := range old {
					old[i] = stateHarness(t, optest.SubtaskContext("win", maxPar, tc.from, i))
				}
				route(t, old, maxPar, steps[:k])
				var snaps [][]byte
				for _, h := range old {
					s, err := h.Snapshot(7)
					if err != nil {
						t.Fatal(err)
					}
					snaps = append(snaps, s)
				}
				next := make([]*optest.Harness, tc.to)
				for i := range next {
					next[i] = stateHarness(t, optest.SubtaskContext("win", maxPar, tc.to, i))
					// Every new subtask gets every old state, in an arbitrary order.
					if err := next[i].Restore(append([][]byte{nil}, snaps...)...); err != nil {
						t.Fatal(err)
					}
				}
				route(t, next, maxPar, steps[k:])
				if got := outputs(append(old, next...)...); !reflect.DeepEqual(got, want) {
					t.Errorf("split at %d: results differ from a single subtask\n got %q\nwant %q", k, got, want)
				}
			}
		})
	}
}

func TestRestoreRejects(t *testing.T) {
	h := stateHarness(t, nil)
	run(t, h, workload(3, 100)[:100]...)
	good, err := h.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	other := func(w spec.Window, ctx *dataflow.Context) error {
		if ctx == nil {
			ctx = optest.Context("win")
		}
		return windowHarness(t, ctx, w).Restore(good)
	}
	ctx64 := optest.Context("win")
	ctx64.MaxParallelism = 64
	ctx64.KeyGroups = dataflow.KeyGroupRange{Start: 0, End: 63}
	tumbling := stateWindow
	tumbling.Sliding, tumbling.Tumbling = nil, ms(20)
	fewer := stateWindow
	fewer.Aggregates = fewer.Aggregates[:4]
	swapped := stateWindow
	swapped.Aggregates = fields("n", "count()", "sum", "sum(v)", "min", "max(v)", "max", "min(v)", "avg", "avg(v)")
	renamed := stateWindow
	renamed.Aggregates = fields("c", "count()", "s", "sum(v)", "lo", "min(v)", "hi", "max(v)", "mean", "avg(v)")
	renamed.AllowedLateness = ms(1)

	for name, err := range map[string]error{
		"max parallelism": other(stateWindow, ctx64),
		"window shape":    other(tumbling, nil),
		"aggregate count": other(fewer, nil),
		"aggregate kinds": other(swapped, nil),
	} {
		if !errors.Is(err, operator.ErrBadState) || !strings.Contains(err.Error(), "node win") {
			t.Errorf("%s: got %v, want ErrBadState naming the node", name, err)
		}
	}
	if err := other(renamed, nil); err != nil {
		t.Errorf("renamed aggregates and new lateness: %v", err)
	}

	bad := map[string][]byte{
		"garbage":     []byte("hello, world"),
		"magic only":  []byte("wwin"),
		"new version": append([]byte("wwin\x03"), good[5:]...),
		"trailing":    append(slices.Clone(good), 0),
	}
	for i := range len(good) {
		bad[fmt.Sprintf("prefix %d", i)] = good[:i]
	}
	delete(bad, "prefix 0") // an empty state is no state
	if err := stateHarness(t, nil).Restore(good, good); !errors.Is(err, operator.ErrBadState) || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("the same state twice: got %v", err)
	}
	for name, s := range bad {
		h := stateHarness(t, nil)
		if err := h.Restore(s); !errors.Is(err, operator.ErrBadState) {
			t.Errorf("%s: got %v, want ErrBadState", name, err)
		}
		// The operator is left empty and usable.
		run(t, h, in(kr("a", 1, "v", int64(1))), wm(dataflow.MaxWatermark))
		if len(h.Records()) != 2 {
			t.Errorf("%s: operator unusable after a failed restore: %v", name, results(h.Records()))
		}
	}
}

func FuzzWindowRestore(f *testing.F) {
	job := &spec.Job{Pipeline: []spec.Node{{Name: "kb", KeyBy: &spec.KeyBy{Expr: "user"}}, {Name: "win", Window: &stateWindow}}}
	seedOp, err := operator.New(job, &job.Pipeline[1], optest.Context("win"))
	if err != nil {
		f.Fatal(err)
	}
	h := optest.New(f, seedOp, optest.Context("win"))
	for _, s := range workload(4, 40) {
		if s.r.Fields.IsZero() {
			_ = h.ProcessWatermark(s.wm)
		} else {
			_ = h.ProcessRecord(s.r)
		}
		if s.r.Fields.IsZero() {
			break
		}
	}
	if snap, err := h.Snapshot(1); err == nil {
		f.Add(snap)
	}
	f.Add([]byte{})
	f.Add([]byte("wwin\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := optest.SubtaskContext("win", dataflow.DefaultMaxParallelism, 2, 1)
		op, err := operator.New(job, &job.Pipeline[1], ctx)
		if err != nil {
			t.Fatal(err)
		}
		s := op.(dataflow.Snapshotter)
		if err := s.Restore([][]byte{data}); err != nil {
			return
		}
		snap, err := s.Snapshot(1)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Restore([][]byte{snap}); err != nil {
			t.Fatalf("restoring our own snapshot: %v", err)
		}
		if again, _ := s.Snapshot(2); !bytes.Equal(again, snap) {
			t.Fatal("snapshot changed across a restore")
		}
		out := &optest.Discard{}
		if err := op.(dataflow.WatermarkHandler).ProcessWatermark(dataflow.MaxWatermark, out); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWindowSnapshotSummaryCountsKeys(t *testing.T) {
	h := stateHarness(t, nil)
	run(t, h, in(kr("a", 1, "v", int64(1))), in(kr("b", 2, "v", int64(1))), in(kr("a", 15, "v", int64(1))), in(kr("c", 3, "v", int64(1))))
	if _, err := h.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	sum, ok := h.Operator().(dataflow.SnapshotSummarizer)
	if !ok {
		t.Fatal("window does not summarize its snapshots")
	}
	if got := sum.SnapshotSummary().Keys; got != 3 {
		t.Fatalf("keys %d, want 3", got)
	}
}

// CaptureSnapshot's encoding, run after the window has gone on processing
// (windows updated, fired and purged, slots reused), gives exactly what
// Snapshot gave at the capture, and the same key count.
func TestWindowCaptureIsolatedFromLaterProcessing(t *testing.T) {
	steps := workload(3, 600)
	for _, k := range []int{0, 1, 100, 300, 599} {
		h := stateHarness(t, nil)
		run(t, h, steps[:k]...)
		op := h.Operator()
		want, err := h.Snapshot(1)
		if err != nil {
			t.Fatal(err)
		}
		wantKeys := op.(dataflow.SnapshotSummarizer).SnapshotSummary().Keys
		encode, err := op.(dataflow.AsyncSnapshotter).CaptureSnapshot(2)
		if err != nil {
			t.Fatal(err)
		}
		run(t, h, steps[k:]...)
		got, sum, err := encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || sum.Keys != wantKeys {
			t.Fatalf("split at %d: the encoded capture differs from the snapshot at the capture (%d vs %d bytes, %d vs %d keys)",
				k, len(got), len(want), sum.Keys, wantKeys)
		}
	}
}

// Savepoints written by the window operator before it moved onto the
// keyed-state backend (format version 1; testdata/window_v1_*.bin were
// written by weir at commit 72c9668 from workload(5, 400): one subtask
// after 200 steps, and two subtasks at max parallelism 16 after 250)
// restore, also at another parallelism, and the run goes on as if
// uninterrupted. A snapshot taken after such a restore is version 2.
func TestRestoreVersion1Savepoint(t *testing.T) {
	steps := workload(5, 400)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if b[4] != 1 {
			t.Fatalf("%s is not a version 1 window state", name)
		}
		return b
	}
	t.Run("same parallelism", func(t *testing.T) {
		want := reference(t, steps)
		a := stateHarness(t, nil)
		run(t, a, steps[:200]...)
		b := stateHarness(t, nil)
		if err := b.Restore(read("window_v1_p1.bin")); err != nil {
			t.Fatal(err)
		}
		snap, err := b.Snapshot(2)
		if err != nil || snap[4] != 2 {
			t.Fatalf("snapshot after restoring version 1: version %d, %v", snap[4], err)
		}
		run(t, b, steps[200:]...)
		if got := outputs(a, b); !reflect.DeepEqual(got, want) {
			t.Errorf("results differ from an uninterrupted run\n got %q\nwant %q", got, want)
		}
	})
	t.Run("2 to 3", func(t *testing.T) {
		const maxPar = 16
		want := reference(t, steps)
		old := []*optest.Harness{stateHarness(t, optest.SubtaskContext("win", maxPar, 2, 0)), stateHarness(t, optest.SubtaskContext("win", maxPar, 2, 1))}
		route(t, old, maxPar, steps[:250])
		snaps := [][]byte{read("window_v1_p2_1.bin"), read("window_v1_p2_0.bin")}
		next := make([]*optest.Harness, 3)
		for i := range next {
			next[i] = stateHarness(t, optest.SubtaskContext("win", maxPar, 3, i))
			if err := next[i].Restore(snaps...); err != nil {
				t.Fatal(err)
			}
		}
		route(t, next, maxPar, steps[250:])
		if got := outputs(append(old, next...)...); !reflect.DeepEqual(got, want) {
			t.Errorf("results differ from a single subtask\n got %q\nwant %q", got, want)
		}
	})
}
