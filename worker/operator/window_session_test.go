package operator_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator"
	"github.com/weir-stream/weir/worker/operator/optest"
)

func sessionWindow(gap, lateness int64) spec.Window {
	return spec.Window{Session: &spec.Session{Gap: ms(gap)}, AllowedLateness: ms(lateness), Late: "side_output",
		Aggregates: fields("n", "count()", "sm", "sum(v)", "mn", "min(v)", "mx", "max(v)", "av", "avg(v)", "cd", "count_distinct(v)",
			"f", "first(v)", "l", "last(v)", "am", "arg_max(v)", "an", "arg_min(v)")}
}

const sessFormat = "%v [%v,%v) n=%v sm=%v mn=%v mx=%v av=%v cd=%v f=%v l=%v am=%v an=%v"

func renderSessions(rs []dataflow.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		g := r.Fields.Get
		out[i] = fmt.Sprintf(sessFormat, g("user"), g("window_start"), g("window_end"), g("n"), g("sm"), g("mn"), g("mx"), g("av"),
			g("cd"), g("f"), g("l"), g("am"), g("an"))
	}
	return out
}

// sessModel is the plain-Go model of session windows: each key's sessions
// hold their records; a record merges every session its [t, t+gap) touches
// (to a fixpoint), and the aggregates are computed from the records when a
// session fires.
type sessModel struct {
	gap, lateness, wm int64
	keys              map[any][]*mSess
	out               []string
	late              []int64 // the late records' sequence numbers
}

type mRec struct {
	t, seq int64
	v      any
}

type mSess struct {
	start, end int64
	fired      bool
	recs       []mRec
}

func (m *sessModel) record(key any, t int64, v any, seq int64) {
	s := &mSess{start: t, end: t + m.gap, recs: []mRec{{t, seq, v}}}
	rest := m.keys[key]
	for changed := true; changed; {
		changed = false
		for i, o := range rest {
			if o.start <= s.end && s.start <= o.end {
				s.start, s.end = min(s.start, o.start), max(s.end, o.end)
				s.recs = append(s.recs, o.recs...)
				rest = slices.Delete(slices.Clone(rest), i, i+1)
				changed = true
				break
			}
		}
	}
	if s.end-1+m.lateness <= m.wm {
		m.late = append(m.late, seq)
		return
	}
	m.keys[key] = append(rest, s)
	if s.end-1 <= m.wm {
		s.fired = true
		m.out = append(m.out, m.render(key, s))
	}
}

func (m *sessModel) watermark(wm int64) {
	if wm <= m.wm {
		return
	}
	m.wm = wm
	for key, list := range m.keys {
		var keep []*mSess
		for _, s := range list {
			if !s.fired && s.end-1 <= wm {
				s.fired = true
				m.out = append(m.out, m.render(key, s))
			}
			if s.end-1+m.lateness > wm {
				keep = append(keep, s)
			}
		}
		m.keys[key] = keep
	}
}

func (m *sessModel) render(key any, s *mSess) string {
	var (
		sum, nv             int64
		mn, mx, first, last any
		ft, lt              int64
		am, an              *mRec
		distinct            = map[any]bool{}
		smv, av             any
	)
	recs := slices.Clone(s.recs)
	slices.SortFunc(recs, func(a, b mRec) int { return int(a.seq - b.seq) }) // arrival order
	for i := range recs {
		r := &recs[i]
		if r.v == nil {
			continue
		}
		v := r.v.(int64)
		nv++
		sum += v
		distinct[v] = true
		if mn == nil || v < mn.(int64) {
			mn = v
		}
		if mx == nil || v > mx.(int64) {
			mx = v
		}
		if first == nil || r.t < ft || r.t == ft && v < first.(int64) {
			first, ft = v, r.t
		}
		if last == nil || r.t > lt || r.t == lt && v > last.(int64) {
			last, lt = v, r.t
		}
		if am == nil || v > am.v.(int64) || v == am.v.(int64) && r.t < am.t {
			am = r
		}
		if an == nil || v < an.v.(int64) || v == an.v.(int64) && r.t < an.t {
			an = r
		}
	}
	if nv > 0 {
		smv, av = sum, float64(sum)/float64(nv)
	}
	rec := func(r *mRec) any {
		if r == nil {
			return nil
		}
		return map[string]any{"user": key, "v": r.v, "s": r.seq}
	}
	return fmt.Sprintf(sessFormat, key, s.start, s.end, int64(len(s.recs)), smv, mn, mx, av, int64(len(distinct)), first, last, rec(am), rec(an))
}

func sessionSteps(seed uint64) []step {
	rng := rand.New(rand.NewPCG(seed, 13))
	vals := []any{nil, int64(0), int64(1), int64(2), int64(3), int64(4)}
	var steps []step
	frontier := int64(0)
	for seq := range int64(400) {
		frontier += int64(rng.IntN(4))
		t := frontier - int64(rng.IntN(20))
		key := fmt.Sprintf("k%d", rng.IntN(4))
		steps = append(steps, in(kr(key, t, "user", key, "v", vals[rng.IntN(len(vals))], "s", seq)))
		if rng.IntN(5) == 0 {
			steps = append(steps, wm(frontier-8))
		}
	}
	return append(steps, wm(dataflow.MaxWatermark))
}

func lateSeqs(hs ...*optest.Harness) []int64 {
	var out []int64
	for _, h := range hs {
		for _, r := range h.SideOutput("late") {
			out = append(out, r.Fields.Get("s").(int64))
		}
	}
	slices.Sort(out)
	return out
}

func sortedSessions(hs ...*optest.Harness) []string {
	var got []string
	for _, h := range hs {
		got = append(got, renderSessions(h.Records())...)
	}
	slices.Sort(got)
	return got
}

// Session windows against the model over random keys, values (nulls and
// ties included) and out-of-order times, some merging sessions, some within
// the allowed lateness (re-firing) and some late (to the side output):
// uninterrupted, restored from a snapshot halfway, and restored from 2
// subtasks into 3.
func TestSessionWindowModel(t *testing.T) {
	merges, lates := 0, 0
	for _, lateness := range []int64{0, 6} {
		for seed := range uint64(8) {
			const gap = 5
			w := sessionWindow(gap, lateness)
			steps := sessionSteps(seed)
			m := &sessModel{gap: gap, lateness: lateness, wm: -1 << 62, keys: map[any][]*mSess{}}
			for _, s := range steps {
				if s.r.Fields.IsZero() {
					m.watermark(s.wm)
				} else {
					m.record(s.r.Key, s.r.Time, s.r.Fields.Get("v"), s.r.Fields.Get("s").(int64))
				}
			}
			want := slices.Clone(m.out)
			slices.Sort(want)
			for _, o := range want {
				if n := strings.Index(o, "n="); o[n+2] != '1' || o[n+3] != ' ' {
					merges++
				}
			}
			if len(want) < 20 {
				t.Fatalf("seed %d: only %d sessions", seed, len(want))
			}
			lates += len(m.late)
			h := windowHarness(t, nil, w)
			run(t, h, steps...)
			if got := sortedSessions(h); !reflect.DeepEqual(got, want) {
				t.Fatalf("lateness %d seed %d: got\n%q\nwant\n%q", lateness, seed, got, want)
			}
			if got := lateSeqs(h); !slices.Equal(got, m.late) {
				t.Fatalf("lateness %d seed %d: late %v, want %v", lateness, seed, got, m.late)
			}

			k := len(steps) / 2
			a := windowHarness(t, nil, w)
			run(t, a, steps[:k]...)
			snap, err := a.Snapshot(1)
			if err != nil {
				t.Fatal(err)
			}
			b := windowHarness(t, nil, w)
			if err := b.Restore(snap); err != nil {
				t.Fatal(err)
			}
			if again, _ := b.Snapshot(2); !slices.Equal(again, snap) {
				t.Fatalf("seed %d: snapshot changed across a restore", seed)
			}
			run(t, b, steps[k:]...)
			if got := sortedSessions(a, b); !reflect.DeepEqual(got, want) {
				t.Fatalf("lateness %d seed %d: restored at %d: got\n%q\nwant\n%q", lateness, seed, k, got, want)
			}
			if got := lateSeqs(a, b); !slices.Equal(got, m.late) {
				t.Fatalf("lateness %d seed %d: restored: late %v, want %v", lateness, seed, got, m.late)
			}

			const maxPar = 16
			old := []*optest.Harness{windowHarness(t, optest.SubtaskContext("win", maxPar, 2, 0), w), windowHarness(t, optest.SubtaskContext("win", maxPar, 2, 1), w)}
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
				next[i] = windowHarness(t, optest.SubtaskContext("win", maxPar, 3, i), w)
				if err := next[i].Restore(snaps...); err != nil {
					t.Fatal(err)
				}
			}
			route(t, next, maxPar, steps[k:])
			all := append(old, next...)
			if got := sortedSessions(all...); !reflect.DeepEqual(got, want) {
				t.Fatalf("lateness %d seed %d: 2 to 3 subtasks: got\n%q\nwant\n%q", lateness, seed, got, want)
			}
			if got := lateSeqs(all...); !slices.Equal(got, m.late) {
				t.Fatalf("lateness %d seed %d: 2 to 3 subtasks: late %v, want %v", lateness, seed, got, m.late)
			}
		}
	}
	if merges == 0 || lates == 0 {
		t.Fatalf("%d sessions held more than one record, %d records late", merges, lates)
	}
	t.Logf("%d multi-record sessions, %d late records", merges, lates)
}

// A record between two sessions of its key, less than the gap from each,
// merges them and their aggregates; once the watermark passed the merged
// session's end, a record within the allowed lateness fires it again, and
// one past it goes to the late side output.
func TestSessionWindowBridgeAndRefire(t *testing.T) {
	w := spec.Window{Session: &spec.Session{Gap: ms(10)}, AllowedLateness: ms(20), Late: "side_output",
		Aggregates: fields("n", "count()", "cd", "count_distinct(v)", "top", "arg_max(v)", "f", "first(v)")}
	h := windowHarness(t, nil, w)
	run(t, h,
		in(kr("a", 100, "user", "a", "v", int64(5))),
		in(kr("a", 118, "user", "a", "v", int64(9))), // a second session: 118 > 100+10
		in(kr("b", 101, "user", "b", "v", int64(1))),
		wm(105),
		in(kr("a", 109, "user", "a", "v", int64(5))), // [109,119) bridges [100,110) and [118,128)
		wm(127),
	)
	got := []string{}
	for _, r := range h.Records() {
		got = append(got, fmt.Sprintf("%v [%v,%v) n=%v cd=%v top=%v f=%v", r.Fields.Get("user"), r.Fields.Get("window_start"), r.Fields.Get("window_end"),
			r.Fields.Get("n"), r.Fields.Get("cd"), r.Fields.Get("top").(map[string]any)["v"], r.Fields.Get("f")))
	}
	want := []string{"b [101,111) n=1 cd=1 top=1 f=1", "a [100,128) n=3 cd=2 top=9 f=5"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	h.Clear()
	run(t, h,
		in(kr("a", 115, "user", "a", "v", int64(7))), // within the lateness: [100,128) fires again
		in(kr("b", 90, "user", "b", "v", int64(3))),  // [90,100) is past its lateness at 127: late
	)
	got = renderSessionsShort(h.Records())
	if want := []string{"a [100,128) n=4"}; !slices.Equal(got, want) {
		t.Fatalf("re-fired %q, want %q", got, want)
	}
	if late := h.SideOutput("late"); len(late) != 1 || late[0].Key != "b" {
		t.Fatalf("late %v, want b's record", late)
	}
}

func renderSessionsShort(rs []dataflow.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%v [%v,%v) n=%v", r.Fields.Get("user"), r.Fields.Get("window_start"), r.Fields.Get("window_end"), r.Fields.Get("n")))
	}
	return out
}

// Session windows follow event time: the operator refuses time: processing
// (the spec refuses it at submit with its path).
func TestSessionWindowRefusesProcessingTime(t *testing.T) {
	w := spec.Window{Session: &spec.Session{Gap: ms(10)}, Time: spec.TimeProcessing, Aggregates: fields("n", "count()")}
	job := &spec.Job{Pipeline: []spec.Node{{Name: "kb", KeyBy: &spec.KeyBy{Expr: "user"}}, {Name: "win", Window: &w}}}
	if _, err := operator.New(job, &job.Pipeline[1], optest.Context("win")); err == nil || !strings.Contains(err.Error(), "processing") {
		t.Fatalf("err = %v", err)
	}
}

// Restoring any bytes into a session window fails cleanly or gives a state
// that snapshots back to the same bytes.
func FuzzWindowRestoreSession(f *testing.F) {
	w := sessionWindow(5, 3)
	w.Aggregates = fields("n", "count()", "cd", "count_distinct(v)", "f", "first(v)", "sm", "sum(v)")
	fuzzWindowRestore(f, w, sessionSteps(1)[:60], true)
}

// The state size estimate of session windows follows their keys and
// sessions (within a factor of the heap they take), and every session is
// purged once the watermark passes its end and allowed lateness: the
// gauge and the snapshot's keyed state return to empty.
func TestSessionWindowStateSize(t *testing.T) {
	const keys = 3000
	w := spec.Window{Session: &spec.Session{Gap: ms(10)}, AllowedLateness: ms(5), Aggregates: fields("n", "count()", "s", "sum(v)")}
	h := windowHarness(t, optest.Context("win"), w)
	if err := h.Open(); err != nil {
		t.Fatal(err)
	}
	empty, err := h.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]dataflow.Record, 0, 2*keys)
	for i := range keys {
		k := fmt.Sprintf("user-%06d", i)
		recs = append(recs, kr(k, 5, "v", int64(i)), kr(k, 100, "v", int64(i))) // two sessions a key
	}
	before := heapNow()
	for _, r := range recs {
		if err := h.Operator().Process(&r, h.Output()); err != nil {
			t.Fatal(err)
		}
	}
	run(t, h, wm(0))
	grown := heapNow() - before
	est := stateGauge(t, h.Metrics())
	t.Logf("%d keys with 2 sessions each: estimate %d bytes, heap grew %d bytes", keys, est, grown)
	if est < grown/3 || est > grown*3 {
		t.Fatalf("estimate %d bytes is far from the %d bytes the heap grew", est, grown)
	}
	runtime.KeepAlive(recs)
	run(t, h, wm(dataflow.MaxWatermark))
	if n := len(h.Records()); n != 2*keys {
		t.Fatalf("%d sessions fired, want %d", n, 2*keys)
	}
	if got := stateGauge(t, h.Metrics()); got != 0 {
		t.Fatalf("after the last watermark: %d bytes", got)
	}
	snap, err := h.Snapshot(2)
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes as an empty window's but for the watermark.
	if len(snap) > len(empty)+10 {
		t.Fatalf("after the last watermark the snapshot has %d bytes, an empty one %d", len(snap), len(empty))
	}
}

// A savepoint of a tumbling window does not restore into a session window,
// nor one of a session window into another gap: the shape cannot change.
func TestSessionWindowRestoreShapeChange(t *testing.T) {
	tumbling := windowHarness(t, nil, spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")})
	session := windowHarness(t, nil, spec.Window{Session: &spec.Session{Gap: ms(10)}, Aggregates: fields("n", "count()")})
	for _, h := range []*optest.Harness{tumbling, session} {
		run(t, h, in(kr("a", 1, "user", "a")))
	}
	tsnap, err := tumbling.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	ssnap, err := session.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		w    spec.Window
		snap []byte
		want string
	}{
		{"tumbling into session", spec.Window{Session: &spec.Session{Gap: ms(10)}, Aggregates: fields("n", "count()")}, tsnap, "window kind 1 in the snapshot, 2 in the job"},
		{"session into tumbling", spec.Window{Tumbling: ms(10), Aggregates: fields("n", "count()")}, ssnap, "window kind 2 in the snapshot, 1 in the job"},
		{"another gap", spec.Window{Session: &spec.Session{Gap: ms(20)}, Aggregates: fields("n", "count()")}, ssnap, "session gap 10 ms in the snapshot, 20 ms in the job"},
	} {
		err := windowHarness(t, nil, c.w).Restore(c.snap)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.what, err, c.want)
		}
	}
}
