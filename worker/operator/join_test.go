package operator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// joinNode parses a job with a join of two keyed sources whose schemas are
// known (left: lid, lt; right: rid, rt) and returns the join node.
func joinNode(t testing.TB, join string) *spec.Node {
	t.Helper()
	src := `
name: j
max_parallelism: 16
pipeline:
  - {name: a, source: {datagen: {profile: sequence}, schema: {k: string, lid: int, lt: int}, event_time: {field: lt}}}
  - {name: b, source: {datagen: {profile: sequence}, schema: {k: string, rid: int, rt: int}, event_time: {field: rt}}}
  - {name: ka, inputs: [a], key_by: k}
  - {name: kb, inputs: [b], key_by: k}
  - {name: j, join: ` + join + `}
  - sink: {stdout: {}}
`
	job, err := spec.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return job.Node("j")
}

// joinEvent is one step of a run: a record of one side, a watermark, or a
// crash that restores from the last snapshot (at another parallelism).
type joinEvent struct {
	kind     byte // 'r' record, 'w' watermark, 's' snapshot, 'c' crash
	side     int
	del      bool // a right record that deletes its key's row (lookup)
	key      string
	id, ts   int64
	wm       int64 // the watermark so far: the record's source watermark
	restorer int   // parallelism after a crash
}

// genJoinEvents makes a random run: records of both sides over a few keys,
// some behind the watermark, watermarks that only grow, snapshots and
// crashes that go back to the last snapshot.
func genJoinEvents(rng *rand.Rand, n int) []joinEvent {
	var evs []joinEvent
	wm := int64(900)
	maxTS := int64(1000)
	for i := range n {
		switch x := rng.IntN(100); {
		case x < 75:
			ts := maxTS - 60 + rng.Int64N(100)
			maxTS = max(maxTS, ts)
			evs = append(evs, joinEvent{kind: 'r', side: rng.IntN(2), key: fmt.Sprintf("k%d", rng.IntN(4)), id: int64(i), ts: ts, wm: wm})
		case x < 90:
			wm = max(wm, maxTS-40+rng.Int64N(40))
			evs = append(evs, joinEvent{kind: 'w', wm: wm})
		case x < 96:
			evs = append(evs, joinEvent{kind: 's'})
		default:
			evs = append(evs, joinEvent{kind: 'c', restorer: 1 + rng.IntN(3)})
		}
	}
	return evs
}

// runJoin drives the join of node through evs at parallelism 1 to start,
// routing records by key group and watermarks to every subtask, and
// returns what the committed output holds: what was emitted before a
// crash and after the snapshot it restores from is dropped, as an
// exactly-once sink aborts it, and the input after the snapshot is
// replayed. At the end the final watermark goes through, and the test
// checks that every subtask's state is empty.
func runJoin(t *testing.T, node *spec.Node, evs []joinEvent) []string {
	t.Helper()
	const maxPar = 16
	type sub struct {
		op  dataflow.Operator
		ctx *dataflow.Context
	}
	open := func(par int, snaps [][]byte) []sub {
		subs := make([]sub, par)
		for i := range subs {
			ctx := optest.SubtaskContext("j", maxPar, par, i)
			op, err := NewJoin(node, ctx)
			if err != nil {
				t.Fatal(err)
			}
			if snaps != nil {
				if err := op.(dataflow.Snapshotter).Restore(snaps); err != nil {
					t.Fatal(err)
				}
			}
			if err := op.Open(ctx); err != nil {
				t.Fatal(err)
			}
			subs[i] = sub{op, ctx}
		}
		return subs
	}
	subs := open(1, nil)
	var committed, pending []string
	out := &optest.Output{}
	collect := func() {
		for _, r := range out.Records() {
			pending = append(pending, joinRow(r))
		}
		out.Clear()
	}
	var snaps [][]byte
	snapAt := 0
	crashed := map[int]bool{}
	for i := 0; i < len(evs); i++ {
		e := evs[i]
		switch e.kind {
		case 'r':
			rec := dataflow.Record{Key: e.key, Time: e.ts, SourceWatermark: e.wm}
			if e.side == joinLeft {
				rec.Fields = dataflow.FieldsOf(map[string]any{"k": e.key, "lid": e.id, "lt": e.ts})
			} else if e.del {
				rec.Fields = dataflow.FieldsOf(map[string]any{"k": e.key, spec.DeletedField: true})
			} else {
				rec.Fields = dataflow.FieldsOf(map[string]any{"k": e.key, "rid": e.id, "rt": e.ts})
			}
			g := dataflow.KeyGroup(e.key, maxPar)
			for _, s := range subs {
				if s.ctx.KeyGroups.Contains(g) {
					if err := s.op.(dataflow.InputProcessor).ProcessInput(e.side, &rec, out); err != nil {
						t.Fatal(err)
					}
				}
			}
		case 'w':
			for _, s := range subs {
				if err := s.op.(dataflow.WatermarkHandler).ProcessWatermark(e.wm, out); err != nil {
					t.Fatal(err)
				}
			}
		case 's':
			collect()
			committed = append(committed, pending...)
			pending = nil
			snaps = nil
			for _, s := range subs {
				b, err := s.op.(dataflow.Snapshotter).Snapshot(int64(i))
				if err != nil {
					t.Fatal(err)
				}
				snaps = append(snaps, b)
			}
			snapAt = i
		case 'c':
			if snaps == nil || crashed[i] {
				continue // nothing to restore, or a crash replayed
			}
			crashed[i] = true
			out.Clear()
			pending = nil
			subs = open(e.restorer, snaps)
			i = snapAt // replay the input after the snapshot
		}
	}
	for _, s := range subs {
		if err := s.op.(dataflow.WatermarkHandler).ProcessWatermark(dataflow.MaxWatermark, out); err != nil {
			t.Fatal(err)
		}
		if node.Join.Lookup != nil {
			continue // the table stays
		}
		b := s.op.(interface{ backendStats() (int64, int64) })
		if entries, timers := b.backendStats(); entries != 0 || timers != 0 {
			t.Fatalf("after the final watermark the state holds %d entries and %d timers", entries, timers)
		}
		if got := s.ctx.Metrics.StateSizes(); len(got) != 1 || got[0].Bytes != 0 {
			t.Fatalf("state size gauge %v after the final watermark, want 0", got)
		}
	}
	collect()
	committed = append(committed, pending...)
	slices.Sort(committed)
	return committed
}

func (j *joinCore) backendStats() (entries, timers int64) {
	s := j.backend.Stats()
	return s.Entries, s.Timers
}

// joinRow renders a join result: key, time, and the four fields.
func joinRow(r dataflow.Record) string {
	return fmt.Sprintf("%v@%d l%v/%v r%v/%v w%v-%v", r.Key, r.Time, r.Fields.Get("lid"), r.Fields.Get("lt"), r.Fields.Get("rid"), r.Fields.Get("rt"),
		r.Fields.Get(spec.JoinWindowStart), r.Fields.Get(spec.JoinWindowEnd))
}

type modelRec struct {
	key    string
	id, ts int64
}

// rowOf renders a model row as joinRow does; win is the window's start
// and end for windowed joins.
func rowOf(key string, ts int64, l modelRec, r *modelRec, win ...int64) string {
	w := "w<nil>-<nil>"
	if len(win) == 2 {
		w = fmt.Sprintf("w%d-%d", win[0], win[1])
	}
	if r == nil {
		return fmt.Sprintf("%v@%d l%v/%v r%v/%v %s", key, ts, l.id, l.ts, nil, nil, w)
	}
	return fmt.Sprintf("%v@%d l%v/%v r%v/%v %s", key, ts, l.id, l.ts, r.id, r.ts, w)
}

// intervalModel is the interval join by its definition: every pair of
// records of a key, neither behind its watermark on arrival, with r.ts in
// [l.ts - lower, l.ts + upper]; with outer, every left record without one.
func intervalModel(evs []joinEvent, lower, upper int64, outer bool) []string {
	var rows []string
	var left, right []modelRec
	for _, e := range evs {
		if e.kind == 'r' && e.ts > e.wm {
			if e.side == joinLeft {
				left = append(left, modelRec{e.key, e.id, e.ts})
			} else {
				right = append(right, modelRec{e.key, e.id, e.ts})
			}
		}
	}
	for _, l := range left {
		n := 0
		for _, r := range right {
			if r.key == l.key && r.ts >= l.ts-lower && r.ts <= l.ts+upper {
				rows = append(rows, rowOf(l.key, max(l.ts, r.ts), l, &r))
				n++
			}
		}
		if n == 0 && outer {
			rows = append(rows, rowOf(l.key, l.ts, l, nil))
		}
	}
	slices.Sort(rows)
	return rows
}

// windowModel is the windowed join by its definition: per key and window
// [start, end) (start a multiple of slide), the pairs of records in it that
// were not late for it (end - 1 > their watermark), at end - 1; with outer,
// the window's left records when it has no right ones.
func windowModel(evs []joinEvent, size, slide int64, outer bool) []string {
	type win struct {
		key string
		end int64
	}
	sides := [2]map[win][]modelRec{{}, {}}
	for _, e := range evs {
		if e.kind != 'r' {
			continue
		}
		for start := e.ts - e.ts%slide; start > e.ts-size; start -= slide {
			if end := start + size; end-1 > e.wm {
				w := win{e.key, end}
				sides[e.side][w] = append(sides[e.side][w], modelRec{e.key, e.id, e.ts})
			}
		}
	}
	var rows []string
	for w, ls := range sides[joinLeft] {
		rs := sides[joinRight][w]
		for _, l := range ls {
			for _, r := range rs {
				rows = append(rows, rowOf(w.key, w.end-1, l, &r, w.end-size, w.end))
			}
			if len(rs) == 0 && outer {
				rows = append(rows, rowOf(w.key, w.end-1, l, nil, w.end-size, w.end))
			}
		}
	}
	slices.Sort(rows)
	return rows
}

// sessionModel is the session-window join by its definition: per key, the
// records of both sides not behind their watermark on arrival, sorted by
// time, split where two neighbours are gap or more apart; per session
// [first, last + gap) every pair at last + gap - 1, and with outer the
// left records of a session without right ones.
func sessionModel(evs []joinEvent, gap int64, outer bool) []string {
	type tagged struct {
		modelRec
		side int
	}
	byKey := map[string][]tagged{}
	for _, e := range evs {
		if e.kind == 'r' && e.ts > e.wm {
			byKey[e.key] = append(byKey[e.key], tagged{modelRec{e.key, e.id, e.ts}, e.side})
		}
	}
	var rows []string
	for key, rs := range byKey {
		slices.SortFunc(rs, func(a, b tagged) int { return int(a.ts - b.ts) })
		for i := 0; i < len(rs); {
			j := i + 1
			for j < len(rs) && rs[j].ts-rs[j-1].ts < gap {
				j++
			}
			session := rs[i:j]
			end := rs[j-1].ts + gap
			var ls, rr []modelRec
			for _, x := range session {
				if x.side == joinLeft {
					ls = append(ls, x.modelRec)
				} else {
					rr = append(rr, x.modelRec)
				}
			}
			for _, l := range ls {
				for _, r := range rr {
					rows = append(rows, rowOf(key, end-1, l, &r, rs[i].ts, end))
				}
				if len(rr) == 0 && outer {
					rows = append(rows, rowOf(key, end-1, l, nil, rs[i].ts, end))
				}
			}
			i = j
		}
	}
	slices.Sort(rows)
	return rows
}

// Every join against its model over random runs with snapshots, crashes
// and restores at other parallelisms (the key groups split and merged):
// the committed output is the model's, exactly once, and the state is
// empty once the input has ended.
func TestJoinsMatchModel(t *testing.T) {
	cases := []struct {
		name  string
		join  string
		model func([]joinEvent) []string
	}{
		{"interval-inner", `{left: ka, right: kb, interval: {lower: 20ms, upper: 30ms}}`,
			func(e []joinEvent) []string { return intervalModel(e, 20, 30, false) }},
		{"interval-left", `{left: ka, right: kb, type: left, interval: {lower: 20ms, upper: 30ms}}`,
			func(e []joinEvent) []string { return intervalModel(e, 20, 30, true) }},
		{"interval-shifted-left", `{left: ka, right: kb, type: left, interval: {lower: -10ms, upper: 40ms}}`,
			func(e []joinEvent) []string { return intervalModel(e, -10, 40, true) }},
		{"tumbling-inner", `{left: ka, right: kb, window: {tumbling: 50ms}}`,
			func(e []joinEvent) []string { return windowModel(e, 50, 50, false) }},
		{"tumbling-left", `{left: ka, right: kb, type: left, window: {tumbling: 50ms}}`,
			func(e []joinEvent) []string { return windowModel(e, 50, 50, true) }},
		{"sliding-left", `{left: ka, right: kb, type: left, window: {sliding: {size: 60ms, slide: 20ms}}}`,
			func(e []joinEvent) []string { return windowModel(e, 60, 20, true) }},
		{"sliding-inner", `{left: ka, right: kb, window: {sliding: {size: 60ms, slide: 20ms}}}`,
			func(e []joinEvent) []string { return windowModel(e, 60, 20, false) }},
		{"session-inner", `{left: ka, right: kb, window: {session: {gap: 15ms}}}`,
			func(e []joinEvent) []string { return sessionModel(e, 15, false) }},
		{"session-left", `{left: ka, right: kb, type: left, window: {session: {gap: 15ms}}}`,
			func(e []joinEvent) []string { return sessionModel(e, 15, true) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node := joinNode(t, c.join)
			for seed := range uint64(40) {
				rng := rand.New(rand.NewPCG(seed, 13))
				evs := genJoinEvents(rng, 150)
				got := runJoin(t, node, evs)
				want := c.model(evs)
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d: %d rows, model %d\n got: %s\nwant: %s", seed, len(got), len(want),
						strings.Join(got, "\n      "), strings.Join(want, "\n      "))
				}
			}
		})
	}
}

// lookupModel is the lookup join by its definition: each left record with
// the latest right record of its key before it, unless deleted since.
func lookupModel(evs []joinEvent, outer bool) []string {
	table := map[string]modelRec{}
	var rows []string
	for _, e := range evs {
		switch {
		case e.kind != 'r':
		case e.side == joinRight && e.del:
			delete(table, e.key)
		case e.side == joinRight:
			table[e.key] = modelRec{e.key, e.id, e.ts}
		default:
			l := modelRec{e.key, e.id, e.ts}
			if r, ok := table[e.key]; ok {
				rows = append(rows, rowOf(e.key, e.ts, l, &r))
			} else if outer {
				rows = append(rows, rowOf(e.key, e.ts, l, nil))
			}
		}
	}
	slices.Sort(rows)
	return rows
}

// The lookup join against its model over random runs with deletes,
// snapshots, crashes and restores at other parallelisms: the table comes
// back from the snapshot (the right input is not read again).
func TestLookupJoinMatchesModel(t *testing.T) {
	for _, outer := range []bool{false, true} {
		typ := "inner"
		if outer {
			typ = "left"
		}
		node := joinNode(t, `{left: ka, right: kb, type: `+typ+`, lookup: {}}`)
		for seed := range uint64(40) {
			rng := rand.New(rand.NewPCG(seed, 17))
			evs := genJoinEvents(rng, 150)
			for i := range evs {
				if evs[i].kind == 'r' && evs[i].side == joinRight && rng.IntN(4) == 0 {
					evs[i].del = true
				}
			}
			got := runJoin(t, node, evs)
			want := lookupModel(evs, outer)
			if !slices.Equal(got, want) {
				t.Fatalf("%s seed %d: %d rows, model %d\n got: %s\nwant: %s", typ, seed, len(got), len(want),
					strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		}
	}
}

// A left join emits an unmatched left record with the right side's fields
// null, and holds the watermark back by upper so that row, emitted when
// the watermark passes l.ts + upper, is not late downstream.
func TestIntervalLeftJoinNullsAndWatermark(t *testing.T) {
	node := joinNode(t, `{left: ka, right: kb, type: left, interval: {lower: 0s, upper: 10ms}}`)
	ctx := optest.Context("j")
	op, err := NewJoin(node, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	out := &optest.Output{}
	ip, wh := op.(dataflow.InputProcessor), op.(dataflow.WatermarkHandler)
	l := dataflow.Record{Key: "a", Time: 100, Fields: dataflow.FieldsOf(map[string]any{"k": "a", "lid": int64(1), "lt": int64(100)})}
	if err := ip.ProcessInput(joinLeft, &l, out); err != nil {
		t.Fatal(err)
	}
	if err := wh.ProcessWatermark(109, out); err != nil {
		t.Fatal(err)
	}
	if len(out.Records()) != 0 || !slices.Equal(out.Watermarks(), []int64{99}) {
		t.Fatalf("before l.ts + upper: records %v, watermarks %v (want none and 99)", out.Records(), out.Watermarks())
	}
	if err := wh.ProcessWatermark(110, out); err != nil {
		t.Fatal(err)
	}
	rs := out.Records()
	if len(rs) != 1 {
		t.Fatalf("records %v, want the unmatched left one", rs)
	}
	r := rs[0]
	want := []string{"k", "lid", "lt", "rid", "rt"}
	var names []string
	for n, v := range r.Fields.All() {
		names = append(names, n)
		if strings.HasPrefix(n, "r") && v != nil {
			t.Fatalf("right field %s = %v, want null", n, v)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, want) || r.Time != 100 || r.Key != "a" {
		t.Fatalf("row %v at %d key %v: want fields %v at 100", r.Fields, r.Time, r.Key, want)
	}
	if wms := out.Watermarks(); wms[len(wms)-1] != 100 || wms[len(wms)-1] < r.Time {
		t.Fatalf("watermarks %v: the row at %d must not be behind the last", wms, r.Time)
	}
	if err := wh.ProcessWatermark(dataflow.MaxWatermark, out); err != nil {
		t.Fatal(err)
	}
	if wms := out.Watermarks(); wms[len(wms)-1] != dataflow.MaxWatermark {
		t.Fatalf("final watermark %v, want MaxWatermark through", wms)
	}
}

// Records without event time, with keys that are not keys, or behind the
// watermark are handled, not panicked on; and output names that clash at
// run time (no schema told at submit) go to the error policy.
func TestJoinBadRecords(t *testing.T) {
	job, err := spec.Parse([]byte(`
name: j
pipeline:
  - {name: a, source: {datagen: {profile: sequence}, event_time: {field: ts}}}
  - {name: b, source: {datagen: {profile: sequence}, event_time: {field: ts}}}
  - {name: ka, inputs: [a], key_by: id}
  - {name: kb, inputs: [b], key_by: id}
  - {name: j, join: {left: ka, right: kb, interval: {lower: 1s, upper: 1s}}}
  - sink: {stdout: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := optest.Context("j")
	ctx.OnError = dataflow.SkipOnError{Counters: ctx.Metrics}
	op, err := NewJoin(job.Node("j"), ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Open(ctx); err != nil {
		t.Fatal(err)
	}
	ip := op.(dataflow.InputProcessor)
	out := &optest.Output{}
	f := dataflow.FieldsOf(map[string]any{"id": int64(1), "ts": int64(5)})
	for _, r := range []dataflow.Record{
		{Key: int64(1), Time: dataflow.NoTime, Fields: f},
		{Key: []any{1}, Time: 5, Fields: f},
	} {
		if err := ip.ProcessInput(joinLeft, &r, out); err != nil {
			t.Fatal(err)
		}
	}
	if got := ctx.Metrics.SkippedInvalid.Load(); got != 2 {
		t.Fatalf("skipped %d, want 2", got)
	}
	ok := dataflow.Record{Key: int64(1), Time: 5, Fields: f}
	if err := ip.ProcessInput(joinLeft, &ok, out); err != nil {
		t.Fatal(err)
	}
	if err := ip.ProcessInput(joinRight, &ok, out); err != nil {
		t.Fatal(err)
	}
	if got := ctx.Metrics.SkippedInvalid.Load(); got != 3 || len(out.Records()) != 0 {
		t.Fatalf("skipped %d, records %v: want the clash of id and ts skipped", got, out.Records())
	}
	late := dataflow.Record{Key: int64(1), Time: 5, Fields: f, SourceWatermark: 5}
	if err := ip.ProcessInput(joinRight, &late, out); err != nil {
		t.Fatal(err)
	}
	if got := ctx.Metrics.DroppedLate.Load(); got != 1 {
		t.Fatalf("dropped late %d, want 1", got)
	}
	if err := op.Process(&ok, out); err == nil {
		// The fail policy is not in force here; Process must not join.
		if got := ctx.Metrics.SkippedInvalid.Load(); got != 4 {
			t.Fatal("Process joined a record without its side")
		}
	}
}

// The entry encoding round-trips and refuses what it did not write.
func TestJoinEntriesEncoding(t *testing.T) {
	es := []joinEntry{
		{rec: dataflow.Record{Time: 7, Fields: dataflow.FieldsOf(map[string]any{"a": int64(1), "b": 2.5, "c": []any{"x", nil}})}, matched: true},
		{rec: dataflow.Record{Time: math.MinInt64 + 1, Fields: dataflow.FieldsOf(map[string]any{"z": "q"}), Origin: dataflow.Origin{Topic: "t", Partition: 3, Offset: 9}}},
	}
	b, err := joinEntriesSer{}.Append(nil, es)
	if err != nil {
		t.Fatal(err)
	}
	got, err := joinEntriesSer{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].matched || got[1].matched || got[0].rec.Fields.String() != es[0].rec.Fields.String() ||
		got[1].rec.Time != es[1].rec.Time || got[1].rec.Origin != es[1].rec.Origin {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range len(b) {
		if _, err := (joinEntriesSer{}).Decode(b[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
}

func FuzzJoinEntriesDecode(f *testing.F) {
	b, _ := joinEntriesSer{}.Append(nil, []joinEntry{{rec: dataflow.Record{Time: 1, Fields: dataflow.FieldsOf(map[string]any{"a": int64(1)})}}})
	f.Add(b)
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := joinEntriesSer{}.Decode(b)
		if err != nil {
			return
		}
		again, err := joinEntriesSer{}.Append(nil, es)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := (joinEntriesSer{}).Decode(again); err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
	})
}
