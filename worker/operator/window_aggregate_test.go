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
	fuzzWindowRestore(f, newAggWindow, newAggSteps(1)[:60], true)
}

// Likewise with arg_max and arg_min, whose records may hold nested maps
// (written in Go's map order): a restored state snapshots and restores
// again.
func FuzzWindowRestoreArgAggregates(f *testing.F) {
	steps := []step{in(kr("a", 1, "user", "a", "v", int64(3), "tags", []any{"x"})), in(kr("b", 12, "user", "b", "v", int64(1))), in(kr("a", 2, "user", "a", "v", int64(7)))}
	fuzzWindowRestore(f, argWindow, steps, false)
}

func fuzzWindowRestore(f *testing.F, w spec.Window, seed []step, stable bool) {
	job := &spec.Job{Pipeline: []spec.Node{{Name: "kb", KeyBy: &spec.KeyBy{Expr: "user"}}, {Name: "win", Window: &w}}}
	seedOp, err := operator.New(job, &job.Pipeline[1], optest.Context("win"))
	if err != nil {
		f.Fatal(err)
	}
	h := optest.New(f, seedOp, optest.Context("win"))
	for _, s := range seed {
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
		if again, _ := s.Snapshot(2); stable && !slices.Equal(again, snap) {
			t.Fatal("snapshot changed across a restore")
		}
		if err := op.(dataflow.WatermarkHandler).ProcessWatermark(dataflow.MaxWatermark, &optest.Discard{}); err != nil {
			t.Fatal(err)
		}
	})
}

var argWindow = spec.Window{Tumbling: ms(10), AllowedLateness: ms(5), Aggregates: fields("best", "arg_max(v)", "worst", "arg_min(v)")}

func renderArgs(rs []dataflow.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%v [%v,%v) best=%v worst=%v", r.Fields.Get("user"), r.Fields.Get("window_start"),
			r.Fields.Get("window_end"), r.Fields.Get("best"), r.Fields.Get("worst"))
	}
	return out
}

// arg_max and arg_min give the whole record (a nested map) with the
// highest and lowest value, the earlier event time winning a tie, then the
// record that came first: against a model over random records (values
// with many ties, nulls, out of order, some late within the lateness, so
// windows fire again) and watermarks, uninterrupted and restored from a
// snapshot at every tenth step.
func TestArgMaxArgMinModel(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 11))
		var steps []step
		frontier := int64(0)
		for i := range 300 {
			frontier += int64(rng.IntN(3))
			key := fmt.Sprintf("k%d", rng.IntN(3))
			var v any = int64(rng.IntN(5))
			if rng.IntN(8) == 0 {
				v = nil
			}
			steps = append(steps, in(kr(key, frontier-int64(rng.IntN(12)), "user", key, "v", v, "i", int64(i))))
			if rng.IntN(5) == 0 {
				steps = append(steps, wm(frontier-4))
			}
		}
		steps = append(steps, wm(dataflow.MaxWatermark))

		// The model: per (key, end) the records in order; a result is
		// computed from the window's records each time it fires.
		type rec struct {
			t, i int64
			v    any
		}
		wins := map[[2]any][]rec{}
		fired := map[[2]any]bool{}
		wmark := int64(-1 << 62)
		var want []string
		result := func(key any, end int64) string {
			var best, worst *rec
			for _, r := range wins[[2]any{key, end}] {
				if r.v == nil {
					continue
				}
				if best == nil || r.v.(int64) > best.v.(int64) || r.v == best.v && r.t < best.t {
					best = &r
				}
				if worst == nil || r.v.(int64) < worst.v.(int64) || r.v == worst.v && r.t < worst.t {
					worst = &r
				}
			}
			show := func(r *rec) any {
				if r == nil {
					return nil
				}
				return map[string]any{"user": key, "v": r.v, "i": r.i}
			}
			return fmt.Sprintf("%v [%v,%v) best=%v worst=%v", key, end-10, end, show(best), show(worst))
		}
		for _, s := range steps {
			if s.r.Fields.IsZero() {
				if s.wm <= wmark {
					continue
				}
				wmark = s.wm
				var due [][2]any
				for k := range wins {
					if k[1].(int64)-1 <= wmark && !fired[k] {
						due = append(due, k)
					}
				}
				slices.SortFunc(due, func(a, b [2]any) int {
					if a[1] != b[1] {
						return int(a[1].(int64) - b[1].(int64))
					}
					return state.CompareKeys(a[0], b[0])
				})
				for _, k := range due {
					fired[k] = true
					want = append(want, result(k[0], k[1].(int64)))
				}
				for k := range wins {
					if k[1].(int64)-1+5 <= wmark {
						delete(wins, k)
					}
				}
				continue
			}
			tm := s.r.Time
			end := tm - ((tm%10)+10)%10 + 10
			if end-1+5 <= wmark {
				continue // late
			}
			k := [2]any{s.r.Key, end}
			wins[k] = append(wins[k], rec{tm, s.r.Fields.Get("i").(int64), s.r.Fields.Get("v")})
			if end-1 <= wmark {
				fired[k] = true
				want = append(want, result(k[0], end))
			} else {
				fired[k] = false
			}
		}
		for k := 0; k < len(steps); k += len(steps) / 10 {
			a := windowHarness(t, nil, argWindow)
			run(t, a, steps[:k]...)
			snap, err := a.Snapshot(1)
			if err != nil {
				t.Fatal(err)
			}
			b := windowHarness(t, nil, argWindow)
			if err := b.Restore(snap); err != nil {
				t.Fatal(err)
			}
			run(t, b, steps[k:]...)
			if got := append(renderArgs(a.Records()), renderArgs(b.Records())...); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, restored at %d: got\n%q\nwant\n%q", seed, k, got, want)
			}
		}
	}
}

// The select docs/spec.md shows after arg_max reads the nested record.
func TestArgMaxThenSelect(t *testing.T) {
	h := harnessFor(t, nil, spec.Node{Name: "sel", Select: fields("auction", "auction", "bidder", "top.bidder", "price", "top.price")})
	top := map[string]any{"auction": int64(7), "bidder": "ann", "price": int64(30)}
	if err := h.ProcessRecord(dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"auction": int64(7), "top": top})}); err != nil {
		t.Fatal(err)
	}
	if got := h.Records()[0].Fields.String(); got != "{auction: 7, bidder: ann, price: 30}" {
		t.Fatalf("got %s", got)
	}
}
