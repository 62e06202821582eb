package pipeline

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/nexmark"
	"github.com/weir-stream/weir/internal/cluster"
)

// The Nexmark queries with joins (examples/nexmark q3, q4, q8, q9) on a
// cluster at parallelism 2, each checked against a plain-Go model of the
// published query over the same generated events. The joins send records
// of one key to one subtask in no fixed order across subtasks, so the
// outputs are compared as multisets.

// nexmarkEvents calls the matching function for each of the first count
// events of the seed-1 generator, in order.
func nexmarkEvents(count int64, person func(nexmark.Person), auction func(nexmark.Auction), bid func(nexmark.Bid)) {
	g := nexmark.New(nexmark.Config{Seed: 1})
	for n := range count {
		switch nexmark.KindOf(n) {
		case nexmark.KindPerson:
			if person != nil {
				person(g.Person(n))
			}
		case nexmark.KindAuction:
			if auction != nil {
				auction(g.Auction(n))
			}
		default:
			if bid != nil {
				bid(g.Bid(n))
			}
		}
	}
}

func runNexmarkJoin(t *testing.T, q string, count int64) []string {
	t.Helper()
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 6})
	out := filepath.Join(t.TempDir(), q)
	id := c.Submit(t, exampleQuery(t, q, count, 2, out))
	c.WaitState(t, id, "FINISHED", 90*time.Second)
	return concat(readSubtasks(t, out, 2))
}

// q3 gives, for every auction of category 10 whose seller lives in OR, ID
// or CA, the seller's name, city and state and the auction's id: the
// regular join of the model, although weir's is an interval join.
func TestNexmarkQ3(t *testing.T) {
	const count = 40000
	local := map[int64]nexmark.Person{}
	var want []string
	nexmarkEvents(count, func(p nexmark.Person) {
		if p.State == "OR" || p.State == "ID" || p.State == "CA" {
			local[p.ID] = p
		}
	}, nil, nil)
	nexmarkEvents(count, nil, func(a nexmark.Auction) {
		if p, ok := local[a.Seller]; ok && a.Category == 10 {
			want = append(want, line(map[string]any{"name": p.Name, "city": p.City, "state": p.State, "id": a.ID}))
		}
	}, nil)
	if len(want) < 50 {
		t.Fatalf("the model joins %d auctions: too few to tell", len(want))
	}
	sameLines(t, "q3", runNexmarkJoin(t, "q3", count), want)
}

// q8 gives every person who is the seller of an auction in the 10-second
// tumbling window of their own event time, once, with the window's start.
func TestNexmarkQ8(t *testing.T) {
	const count = 220000 // two full 10 s windows and part of a third
	const size = 10000
	sold := map[[2]int64]bool{} // seller, window start
	nexmarkEvents(count, nil, func(a nexmark.Auction) {
		sold[[2]int64{a.Seller, a.DateTime - a.DateTime%size}] = true
	}, nil)
	var want []string
	windows := map[int64]bool{}
	nexmarkEvents(count, func(p nexmark.Person) {
		start := p.DateTime - p.DateTime%size
		if sold[[2]int64{p.ID, start}] {
			windows[start] = true
			want = append(want, line(map[string]any{"id": p.ID, "name": p.Name, "starttime": start}))
		}
	}, nil, nil)
	if len(want) < 50 || len(windows) < 3 {
		t.Fatalf("the model finds %d new sellers in %d windows: too few to tell", len(want), len(windows))
	}
	sameLines(t, "q8", runNexmarkJoin(t, "q8", count), want)
}

// winningBids is the model of the inner query of q4 and q9: per auction,
// its bids within [date_time, expires], the highest (the earliest of
// equal ones) winning; a tie of price and time is reported, as then the
// published query leaves the winner open.
func winningBids(t *testing.T, count int64) (map[int64]nexmark.Auction, map[int64]nexmark.Bid) {
	t.Helper()
	auctions := map[int64]nexmark.Auction{}
	nexmarkEvents(count, nil, func(a nexmark.Auction) { auctions[a.ID] = a }, nil)
	win := map[int64]nexmark.Bid{}
	nexmarkEvents(count, nil, nil, func(b nexmark.Bid) {
		a, ok := auctions[b.Auction]
		if !ok || b.DateTime < a.DateTime || b.DateTime > a.Expires {
			return
		}
		w, ok := win[b.Auction]
		switch {
		case !ok || b.Price > w.Price || b.Price == w.Price && b.DateTime < w.DateTime:
			win[b.Auction] = b
		case b.Price == w.Price && b.DateTime == w.DateTime:
			t.Fatalf("auction %d: two winning bids at price %d and time %d", b.Auction, b.Price, b.DateTime)
		}
	})
	return auctions, win
}

// q4 emits, per category, the running average of the closing prices of
// its auctions, one row per auction that had a bid in its lifetime; the
// last row of each category is the average of all of them.
func TestNexmarkQ4(t *testing.T) {
	const count = 60000
	auctions, win := winningBids(t, count)
	type acc struct{ n, sum int64 }
	cats := map[int64]*acc{}
	for id, b := range win {
		c := auctions[id].Category
		if cats[c] == nil {
			cats[c] = &acc{}
		}
		cats[c].n++
		cats[c].sum += b.Price
	}
	if len(win) < 100 || len(cats) < 3 {
		t.Fatalf("the model closes %d auctions in %d categories: too few to tell", len(win), len(cats))
	}
	got := runNexmarkJoin(t, "q4", count)
	if len(got) != len(win) {
		t.Errorf("%d rows, want one per closed auction: %d", len(got), len(win))
	}
	last := map[int64]float64{}
	rows := map[int64]int{}
	for _, l := range got {
		var r struct {
			Category int64   `json:"category"`
			Final    float64 `json:"final"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		last[r.Category] = r.Final
		rows[r.Category]++
	}
	for c, a := range cats {
		if want := float64(a.sum) / float64(a.n); last[c] != want || rows[c] != int(a.n) {
			t.Errorf("category %d: %d rows ending at %v, want %d ending at %v", c, rows[c], last[c], a.n, want)
		}
	}
	if len(last) != len(cats) {
		t.Errorf("categories %v, want %d of them", last, len(cats))
	}
}

// q9 gives every auction that had a bid in its lifetime with its winning
// bid's auction, bidder, price, time and extra.
func TestNexmarkQ9(t *testing.T) {
	const count = 60000
	auctions, win := winningBids(t, count)
	if len(win) < 100 {
		t.Fatalf("the model closes %d auctions: too few to tell", len(win))
	}
	var want []string
	for id, b := range win {
		a := auctions[id]
		want = append(want, line(map[string]any{"id": a.ID, "item_name": a.ItemName, "description": a.Description,
			"initial_bid": a.InitialBid, "reserve": a.Reserve, "date_time": a.DateTime, "expires": a.Expires,
			"seller": a.Seller, "category": a.Category, "extra": a.Extra, "auction": b.Auction, "bidder": b.Bidder,
			"price": b.Price, "bid_date_time": b.DateTime, "bid_extra": b.Extra}))
	}
	sameLines(t, "q9", runNexmarkJoin(t, "q9", count), want)
}
