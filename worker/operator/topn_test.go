package operator

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator/optest"
)

func topNOp(t testing.TB, ctx *dataflow.Context, tn spec.TopN) dataflow.Operator {
	t.Helper()
	op, err := New(nil, &spec.Node{Name: "top", TopN: &tn}, ctx)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func topRec(key any, t int64, kv ...any) dataflow.Record {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return dataflow.Record{Key: key, Time: t, Fields: dataflow.FieldsOf(m)}
}

func topStrings(rs []dataflow.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, kfmt("", r))
	}
	return out
}

func TestTopNOwnWindows(t *testing.T) {
	h := optest.New(t, topNOp(t, nil, spec.TopN{N: 2, OrderBy: "price DESC", Tumbling: kms(10), Late: "side_output"}), nil)
	for _, r := range []dataflow.Record{
		topRec("a", 1, "price", int64(5), "id", int64(1)),
		topRec("a", 2, "price", int64(9), "id", int64(2)),
		topRec("b", 3, "price", int64(1), "id", int64(3)),
		topRec("a", 4, "price", int64(7), "id", int64(4)),
		topRec("a", 12, "price", int64(3), "id", int64(5)), // the next window
		topRec("a", 5, "price", nil, "id", int64(6)),       // null is last in DESC
		topRec("a", 6, "price", int64(7), "id", int64(7)),  // a tie with 7, broken by the records' bytes
	} {
		if err := h.ProcessRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.Records()) != 0 {
		t.Fatalf("emitted before the watermark: %v", h.Records())
	}
	if err := h.ProcessWatermark(9); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a@9 {id: 2, price: 9, window_start: 0, window_end: 10, rank: 1}",
		"a@9 {id: 4, price: 7, window_start: 0, window_end: 10, rank: 2}",
		"b@9 {id: 3, price: 1, window_start: 0, window_end: 10, rank: 1}",
	}
	if got := topStrings(h.Records()); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if err := h.ProcessRecord(topRec("a", 8, "price", int64(100))); err != nil {
		t.Fatal(err)
	}
	if got := len(h.SideOutput(LateTag)); got != 1 {
		t.Errorf("late records %d, want 1", got)
	}
	h.Clear()
	if err := h.EndOfStream(); err != nil {
		t.Fatal(err)
	}
	if got := topStrings(h.Records()); !reflect.DeepEqual(got, []string{"a@19 {id: 5, price: 3, window_start: 10, window_end: 20, rank: 1}"}) {
		t.Fatalf("at end of stream: %q", got)
	}
	if s := h.Operator().(*topN).backend.Stats(); s.Entries != 0 || s.Timers != 0 {
		t.Errorf("state left after every window fired: %+v", s)
	}
}

// After a window, top_n ranks its results by their window_end: the top
// auction per window.
func TestTopNAfterWindow(t *testing.T) {
	h := optest.New(t, topNOp(t, nil, spec.TopN{N: 1, OrderBy: "bids desc", RankAs: "pos"}), nil)
	for _, r := range []dataflow.Record{
		topRec(int64(60), 59, "auction", int64(1), "window_start", int64(0), "window_end", int64(60), "bids", int64(3)),
		topRec(int64(60), 59, "auction", int64(2), "window_start", int64(0), "window_end", int64(60), "bids", int64(8)),
		topRec(int64(120), 119, "auction", int64(1), "window_start", int64(60), "window_end", int64(120), "bids", int64(1)),
	} {
		if err := h.ProcessRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.EndOfStream(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"60@59 {auction: 2, bids: 8, window_end: 60, window_start: 0, pos: 1}",
		"120@119 {auction: 1, bids: 1, window_end: 120, window_start: 60, pos: 1}",
	}
	if got := topStrings(h.Records()); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	err := optest.New(t, topNOp(t, nil, spec.TopN{N: 1, OrderBy: "bids"}), nil).ProcessRecord(topRec("k", 1, "bids", int64(1)))
	if err == nil || !strings.Contains(err.Error(), "no window_end") {
		t.Errorf("a record without window_end: %v", err)
	}
}

// Ties are broken by the records' contents, not by their arrival: any
// order of the same records ranks them the same.
func TestTopNTiesIndependentOfArrival(t *testing.T) {
	var recs []dataflow.Record
	for i := range int64(12) {
		recs = append(recs, topRec("k", i, "score", i%3, "id", i))
	}
	var first []string
	for perm := range 20 {
		h := optest.New(t, topNOp(t, nil, spec.TopN{N: 5, OrderBy: "score", Tumbling: kms(100)}), nil)
		rs := slices.Clone(recs)
		for i := range rs {
			j := (i*7 + perm*5) % len(rs)
			rs[i], rs[j] = rs[j], rs[i]
		}
		for _, r := range rs {
			if err := h.ProcessRecord(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.EndOfStream(); err != nil {
			t.Fatal(err)
		}
		got := topStrings(h.Records())
		if perm == 0 {
			first = got
			if len(got) != 5 || !strings.Contains(got[4], "score: 1") {
				t.Fatalf("ranked %q", got)
			}
		} else if !reflect.DeepEqual(got, first) {
			t.Fatalf("arrival order %d ranks\n%q\nthe first ranked\n%q", perm, got, first)
		}
	}
}

func TestTopNErrors(t *testing.T) {
	h := optest.New(t, topNOp(t, nil, spec.TopN{N: 2, OrderBy: "v", Tumbling: kms(10)}), nil)
	for _, c := range []struct {
		r    dataflow.Record
		want string
	}{
		{dataflow.Record{Key: "a", Time: dataflow.NoTime}, "no event time"},
		{topRec("a", 1, "v", []any{1}), "top_n order_by: want a number, string, bool or null"},
		{topRec("a", 1), "top_n order_by"},
	} {
		if err := h.ProcessRecord(c.r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.r, err, c.want)
		}
	}
	for _, tn := range []spec.TopN{{N: 0, OrderBy: "v"}, {N: 1, OrderBy: "v +"}, {N: 1, OrderBy: "v", Late: "x"}} {
		if _, err := New(nil, &spec.Node{Name: "t", TopN: &tn}, nil); err == nil {
			t.Errorf("%+v accepted", tn)
		}
	}
}

var topShape = dataflow.MustShape("id", "k", "v", "window_start", "window_end", "rank")

// topNModel ranks each key and window's on-time records in plain Go by
// v*100000+id (unique, so no ties), and emits them when the watermark
// reaches the window's end: here at the end of the stream, per key in
// order of end.
func topNModel(steps []kstep, n int, size int64, desc bool) (main, late map[string][]string) {
	type win struct {
		key any
		end int64
	}
	groups := map[win][]dataflow.Record{}
	out := map[string][]string{}
	late = map[string][]string{}
	for _, s := range steps {
		if s.kind != 'r' {
			continue
		}
		r := s.rec
		end := r.Time - mod(r.Time, size) + size
		if end-1 <= r.SourceWatermark {
			k := fmt.Sprint(r.Key)
			late[k] = append(late[k], kfmt(LateTag, r))
			continue
		}
		w := win{r.Key, end}
		groups[w] = append(groups[w], r)
	}
	ord := func(r dataflow.Record) int64 { return r.Fields.Get("v").(int64)*100000 + r.Fields.Get("id").(int64) }
	wins := slices.SortedFunc(func(yield func(win) bool) {
		for w := range groups {
			if !yield(w) {
				return
			}
		}
	}, func(a, b win) int { return int(a.end - b.end) })
	for _, w := range wins {
		rs := groups[w]
		slices.SortFunc(rs, func(a, b dataflow.Record) int {
			if desc {
				return int(ord(b) - ord(a))
			}
			return int(ord(a) - ord(b))
		})
		for i, r := range rs[:min(n, len(rs))] {
			f := dataflow.NewFields(topShape, []any{r.Fields.Get("id"), r.Fields.Get("k"), r.Fields.Get("v"), w.end - size, w.end, int64(i + 1)})
			k := fmt.Sprint(w.key)
			out[k] = append(out[k], kfmt("", dataflow.Record{Key: w.key, Time: w.end - 1, Fields: f}))
		}
	}
	return out, late
}

// splitLate separates a run's late side output from its main output.
func splitLate(got map[string][]string) (main, late map[string][]string) {
	main, late = map[string][]string{}, map[string][]string{}
	for k, ls := range got {
		for _, l := range ls {
			if strings.HasPrefix(l, LateTag+": ") {
				late[k] = append(late[k], l)
			} else {
				main[k] = append(main[k], l)
			}
		}
	}
	return main, late
}

// Property: over random records, watermarks and restores at changing
// parallelism, top_n emits the model's rankings, ascending and
// descending, and sends the model's late records to its side output.
func TestTopNProperty(t *testing.T) {
	for seed := range uint64(30) {
		n := 1 + int(seed%4)
		size := int64(20 + seed*13%70)
		desc := seed%2 == 0
		order := "v * 100000 + id"
		if desc {
			order += " DESC"
		}
		late := "drop"
		if seed%3 == 0 {
			late = "side_output"
		}
		steps := kgen(seed, 400, false)
		got, gotLate := splitLate(krun(t, steps, func(ctx *dataflow.Context) dataflow.Operator {
			return topNOp(t, ctx, spec.TopN{N: n, OrderBy: order, Tumbling: kms(size), RankAs: "rank", Late: late})
		}))
		want, wantLate := topNModel(steps, n, size, desc)
		kcheck(t, seed, got, want)
		if late == "drop" {
			wantLate = map[string][]string{}
		}
		kcheck(t, seed, gotLate, wantLate)
	}
}

// The snapshot decoder refuses damaged input with an error.
func FuzzTopNRestore(f *testing.F) {
	h := optest.New(f, topNOp(f, nil, spec.TopN{N: 2, OrderBy: "v", Tumbling: kms(10)}), nil)
	for i := range int64(5) {
		if err := h.ProcessRecord(topRec(fmt.Sprint(i%2), i, "v", i)); err != nil {
			f.Fatal(err)
		}
	}
	snap, err := h.Snapshot(1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(snap)
	f.Add(bytes.Repeat([]byte{1}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		op := topNOp(t, nil, spec.TopN{N: 2, OrderBy: "v", Tumbling: kms(10)})
		h := optest.New(t, op, nil)
		if err := h.Restore(b); err != nil {
			return
		}
		if err := h.EndOfStream(); err != nil {
			t.Fatalf("restored state fails to fire: %v", err)
		}
	})
}
