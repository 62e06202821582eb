package datagen

import (
	"context"
	"reflect"
	"testing"

	"github.com/weir-stream/weir/connectors/nexmark"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

func nexmarkNode(seed, count int64) *spec.Node {
	return node(spec.DatagenSource{Profile: ProfileNexmark, Seed: seed, Count: count,
		Nexmark: &spec.Nexmark{AvgBidSize: 60}}, &spec.EventTime{Field: "date_time"})
}

// stream runs every subtask of n at parallelism par and returns the
// records by event number, failing on a number emitted twice.
func stream(t *testing.T, n *spec.Node, par int) map[int64]dataflow.Record {
	t.Helper()
	got := map[int64]dataflow.Record{}
	for sub := range par {
		out := &collector{}
		run(t, build(t, n, sub, par), out)
		for _, r := range out.recs {
			if _, dup := got[r.Origin.Offset]; dup {
				t.Fatalf("p=%d: event %d emitted twice", par, r.Origin.Offset)
			}
			got[r.Origin.Offset] = r
		}
	}
	return got
}

func sameRecord(a, b dataflow.Record) bool {
	return a.Time == b.Time && a.Origin == b.Origin && reflect.DeepEqual(a.Fields.Map(), b.Fields.Map())
}

func TestNexmarkRecords(t *testing.T) {
	const count = 5000
	got := stream(t, nexmarkNode(3, count), 1)
	if len(got) != count {
		t.Fatalf("%d events, want %d", len(got), count)
	}
	g := nexmark.New(nexmark.Config{Seed: 3, AvgBidSize: 60})
	types := map[string]int{}
	for n := range int64(count) {
		r := got[n]
		f := r.Fields.Map()
		typ, _ := f["event_type"].(string)
		types[typ]++
		var want map[string]any
		switch typ {
		case "person":
			p := g.Person(n)
			want = map[string]any{"event_type": typ, "id": p.ID, "name": p.Name, "email_address": p.EmailAddress,
				"credit_card": p.CreditCard, "city": p.City, "state": p.State, "date_time": p.DateTime, "extra": p.Extra}
		case "auction":
			a := g.Auction(n)
			want = map[string]any{"event_type": typ, "id": a.ID, "item_name": a.ItemName, "description": a.Description,
				"initial_bid": a.InitialBid, "reserve": a.Reserve, "date_time": a.DateTime, "expires": a.Expires,
				"seller": a.Seller, "category": a.Category, "extra": a.Extra}
		case "bid":
			b := g.Bid(n)
			want = map[string]any{"event_type": typ, "auction": b.Auction, "bidder": b.Bidder, "price": b.Price,
				"channel": b.Channel, "url": b.URL, "date_time": b.DateTime, "extra": b.Extra}
		}
		if !reflect.DeepEqual(f, want) || r.Time != f["date_time"] {
			t.Fatalf("event %d at %d: %v, want %v", n, r.Time, f, want)
		}
	}
	if types["person"] != count/50 || types["auction"] != count*3/50 || types["bid"] != count*46/50 {
		t.Fatalf("event types %v", types)
	}
}

func TestNexmarkDeterministicBySeed(t *testing.T) {
	a, b, c := stream(t, nexmarkNode(5, 500), 1), stream(t, nexmarkNode(5, 500), 1), stream(t, nexmarkNode(6, 500), 1)
	differ := 0
	for n := range int64(500) {
		if !sameRecord(a[n], b[n]) {
			t.Fatalf("event %d differs between two runs with seed 5", n)
		}
		if !sameRecord(a[n], c[n]) {
			differ++
		}
	}
	if differ < 490 {
		t.Fatalf("only %d of 500 events differ between seeds", differ)
	}
}

// The union of p subtasks' streams is the single subtask's stream.
func TestNexmarkUnionOfSubtasks(t *testing.T) {
	const count = 3000
	one := stream(t, nexmarkNode(9, count), 1)
	for _, p := range []int{2, 3, 7} {
		many := stream(t, nexmarkNode(9, count), p)
		if len(many) != count {
			t.Fatalf("p=%d: %d events, want %d", p, len(many), count)
		}
		for n, r := range one {
			if !sameRecord(r, many[n]) {
				t.Fatalf("p=%d: event %d is %v, at p=1 %v", p, n, many[n].Fields, r.Fields)
			}
		}
	}
}

// FuzzNexmarkRestore feeds the restore decoder arbitrary states: it accepts
// or refuses them, and an accepted state never makes the source emit an
// event outside its share or twice.
func FuzzNexmarkRestore(f *testing.F) {
	s0 := &Source{node: "gen", par: 2, sub: 1}
	s0.next.Store(41)
	st, _ := s0.Snapshot(1)
	s1 := &Source{node: "gen", par: 2, sub: 0}
	s1.next.Store(10)
	st1, _ := s1.Snapshot(1)
	f.Add(st, st1, uint8(3), uint8(1))
	f.Add(st, st, uint8(2), uint8(1))
	f.Add([]byte{}, []byte{1}, uint8(1), uint8(0))
	// Table states of subtasks 0 and 1 of 2, modulus 6.
	f.Add(appendU64s(nil, 2, 0, 6, 0, 2, 40), appendU64s(nil, 2, 1, 6, 7, 3, 5), uint8(2), uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, par, sub uint8) {
		p := 1 + int(par%8)
		s := build(t, nexmarkNode(1, 200), int(sub)%p, p)
		if err := s.Restore([][]byte{a, b}); err != nil {
			return
		}
		out := &collector{}
		if err := s.Run(context.Background(), out); err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		for _, r := range out.recs {
			o := r.Origin.Offset
			if seen[o] || o < 0 || o >= 200 || o%int64(p) != int64(s.sub) {
				t.Fatalf("subtask %d of %d emitted event %d (again: %v)", s.sub, p, o, seen[o])
			}
			seen[o] = true
		}
	})
}

func TestNexmarkSettingsRefused(t *testing.T) {
	n := node(spec.DatagenSource{Profile: ProfileSequence, Nexmark: &spec.Nexmark{}}, nil)
	if _, err := NewSource(n, &dataflow.Context{Parallelism: 1}); err == nil {
		t.Fatal("nexmark settings accepted with profile sequence")
	}
	// Event time on a field the profile does not have goes to on_error.
	n = node(spec.DatagenSource{Profile: ProfileNexmark, Count: 3}, &spec.EventTime{Field: "ts"})
	err := build(t, n, 0, 1).Run(context.Background(), &collector{})
	if err == nil {
		t.Fatal("event time from a missing field accepted")
	}
}

func BenchmarkNexmark(b *testing.B) {
	benchRun(b, spec.DatagenSource{Profile: ProfileNexmark, Seed: 1}, &spec.EventTime{Field: "date_time"})
}
