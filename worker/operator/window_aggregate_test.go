package operator_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
	"github.com/weir-stream/weir/worker/operator"
	"github.com/weir-stream/weir/worker/operator/optest"
)

var newAggWindow = spec.Window{Tumbling: ms(10), Aggregates: fields("cd", "count_distinct(v)", "first", "first(v)", "last", "last(v)", "n", "count()")}

func renderNewAggs(rs []dataflow.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%v [%v,%v) cd=%v first=%#v last=%#v n=%v", r.Fields.Get("user"), r.Fields.Get("window_start"),
			r.Fields.Get("window_end"), r.Fields.Get("cd"), r.Fields.Get("first"), r.Fields.Get("last"), r.Fields.Get("n"))
	}
	return out
}

// newAggModel is the plain-Go model of a tumbling 10 ms window, lateness
// 0, with count_distinct, first and last by event time (ties: the
// smallest value first, the largest last), over one ordered stream of
// records and watermarks.
type newAggModel struct {
	wm   int64
	wins map[[2]any]*modelWin
	out  []string
}

type modelWin struct {
	key      any
	end      int64
	distinct map[any]bool
	firstT   int64
	lastT    int64
	first    any
	last     any
	n        int64
	seen     bool
}

func (m *newAggModel) record(key any, t int64, v any) {
	end := t - ((t%10)+10)%10 + 10
	if end-1 <= m.wm {
		return // late
	}
	w := m.wins[[2]any{key, end}]
	if w == nil {
		w = &modelWin{key: key, end: end, distinct: map[any]bool{}}
		m.wins[[2]any{key, end}] = w
	}
	w.n++
	if v == nil {
		return
	}
	w.distinct[v] = true
	if !w.seen || t < w.firstT || t == w.firstT && state.CompareKeys(v, w.first) < 0 {
		w.first, w.firstT = v, t
	}
	if !w.seen || t > w.lastT || t == w.lastT && state.CompareKeys(v, w.last) > 0 {
		w.last, w.lastT = v, t
	}
	w.seen = true
}

func (m *newAggModel) watermark(wm int64) {
	if wm <= m.wm {
		return
	}
	m.wm = wm
	var due []*modelWin
	for k, w := range m.wins {
		if w.end-1 <= wm {
			due = append(due, w)
			delete(m.wins, k)
		}
	}
	slices.SortFunc(due, func(a, b *modelWin) int {
		if a.end != b.end {
			return int(a.end - b.end)
		}
		return state.CompareKeys(a.key, b.key)
	})
	for _, w := range due {
		m.out = append(m.out, fmt.Sprintf("%v [%v,%v) cd=%v first=%#v last=%#v n=%v", w.key, w.end-10, w.end, int64(len(w.distinct)), w.first, w.last, w.n))
	}
}

func newAggSteps(seed uint64) []step {
	rng := rand.New(rand.NewPCG(seed, 3))
	vals := []any{nil, int64(1), int64(2), int64(3), 1.5, "a", "b", true, false}
	var steps []step
	frontier := int64(0)
	for range 400 {
		frontier += int64(rng.IntN(3))
		t := frontier - int64(rng.IntN(15))
		key := fmt.Sprintf("k%d", rng.IntN(4))
		steps = append(steps, in(kr(key, t, "user", key, "v", vals[rng.IntN(len(vals))])))
		if rng.IntN(6) == 0 {
			steps = append(steps, wm(frontier-5))
		}
	}
	return append(steps, wm(dataflow.MaxWatermark))
}

// count_distinct, first and last against the model, over random records
// (values of every type, nulls, out of order, some late) and watermarks,
// uninterrupted, restored from a snapshot at every split, and restored
// from 2 subtasks into 3.
func TestNewAggregatesModel(t *testing.T) {
	for seed := range uint64(10) {
		steps := newAggSteps(seed)
		m := &newAggModel{wm: -1 << 62, wins: map[[2]any]*modelWin{}}
		for _, s := range steps {
			if s.r.Fields.IsZero() {
				m.watermark(s.wm)
			} else {
				m.record(s.r.Key, s.r.Time, s.r.Fields.Get("v"))
			}
		}
		want := m.out
		if len(want) < 20 {
			t.Fatalf("seed %d: only %d windows", seed, len(want))
		}
		h := windowHarness(t, nil, newAggWindow)
		run(t, h, steps...)
		if got := renderNewAggs(h.Records()); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: got\n%q\nwant\n%q", seed, got, want)
		}
		k := len(steps) / 2
		a := windowHarness(t, nil, newAggWindow)
		run(t, a, steps[:k]...)
		snap, err := a.Snapshot(1)
		if err != nil {
			t.Fatal(err)
		}
		b := windowHarness(t, nil, newAggWindow)
		if err := b.Restore(snap); err != nil {
			t.Fatal(err)
		}
		if again, _ := b.Snapshot(2); !slices.Equal(again, snap) {
			t.Fatalf("seed %d: snapshot changed across a restore", seed)
		}
		run(t, b, steps[k:]...)
		if got := append(renderNewAggs(a.Records()), renderNewAggs(b.Records())...); !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: restored at %d: got\n%q\nwant\n%q", seed, k, got, want)
		}
		// 2 subtasks to 3.
		const maxPar = 16
		old := []*optest.Harness{windowHarness(t, optest.SubtaskContext("win", maxPar, 2, 0), newAggWindow), windowHarness(t, optest.SubtaskContext("win", maxPar, 2, 1), newAggWindow)}
		route(t, old, maxPar, steps[:k])
		var snaps [][]byte
		for _, h := range old {
			s, err := h.Snapshot(3)
			if err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, s)
		}
		next := make([]*optest.Harness, 3)
		for i := range next {
			next[i] = windowHarness(t, optest.SubtaskContext("win", maxPar, 3, i), newAggWindow)
			if err := next[i].Restore(snaps...); err != nil {
				t.Fatal(err)
			}
		}
		route(t, next, maxPar, steps[k:])
		var got []string
		for _, h := range append(old, next...) {
			got = append(got, renderNewAggs(h.Records())...)
		}
		slices.Sort(got)
		sorted := slices.Clone(want)
		slices.Sort(sorted)
		if !reflect.DeepEqual(got, sorted) {
			t.Fatalf("seed %d: 2 to 3 subtasks: got\n%q\nwant\n%q", seed, got, sorted)
		}
	}
}

// A list or map value is refused for the node's on_error, not folded.
func TestNewAggregatesRefuseNonScalars(t *testing.T) {
	h := windowHarness(t, nil, spec.Window{Tumbling: ms(10), Aggregates: fields("cd", "count_distinct(v)")})
	err := h.ProcessRecord(kr("a", 1, "user", "a", "v", []any{int64(1)}))
	if err == nil {
		t.Fatal("a list was counted")
	}
}

// Restoring any bytes into a window with count_distinct, first and last
// fails cleanly or gives a state that snapshots back to the same bytes.
func FuzzWindowRestoreNewAggregates(f *testing.F) {
	job := &spec.Job{Pipeline: []spec.Node{{Name: "kb", KeyBy: &spec.KeyBy{Expr: "user"}}, {Name: "win", Window: &newAggWindow}}}
	seedOp, err := operator.New(job, &job.Pipeline[1], optest.Context("win"))
	if err != nil {
		f.Fatal(err)
	}
	h := optest.New(f, seedOp, optest.Context("win"))
	for _, s := range newAggSteps(1)[:60] {
		if s.r.Fields.IsZero() {
			_ = h.ProcessWatermark(s.wm)
		} else {
			_ = h.ProcessRecord(s.r)
		}
	}
	if snap, err := h.Snapshot(1); err == nil {
		f.Add(snap)
	}
	f.Add([]byte("wwin\x02\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := operator.New(job, &job.Pipeline[1], optest.SubtaskContext("win", dataflow.DefaultMaxParallelism, 2, 1))
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
		if again, _ := s.Snapshot(2); !slices.Equal(again, snap) {
			t.Fatal("snapshot changed across a restore")
		}
		if err := op.(dataflow.WatermarkHandler).ProcessWatermark(dataflow.MaxWatermark, &optest.Discard{}); err != nil {
			t.Fatal(err)
		}
	})
}
