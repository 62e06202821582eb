package nexmark

import (
	"reflect"
	"testing"
)

func event(g *Generator, n int64) any {
	switch KindOf(n) {
	case KindPerson:
		return g.Person(n)
	case KindAuction:
		return g.Auction(n)
	}
	return g.Bid(n)
}

func TestDeterministicBySeed(t *testing.T) {
	a, b, c := New(Config{Seed: 7}), New(Config{Seed: 7}), New(Config{Seed: 8})
	var fwd []any
	for n := range int64(1000) {
		fwd = append(fwd, event(a, n))
	}
	differ := 0
	// Backwards through b: an event does not depend on those before it.
	for n := int64(999); n >= 0; n-- {
		if eb := event(b, n); !reflect.DeepEqual(fwd[n], eb) {
			t.Fatalf("event %d: %+v then %+v with the same seed", n, fwd[n], eb)
		}
		if !reflect.DeepEqual(fwd[n], event(c, n)) {
			differ++
		}
	}
	if differ < 990 {
		t.Fatalf("only %d of 1000 events differ between seeds 7 and 8", differ)
	}
}

func TestProportionsAndIDs(t *testing.T) {
	const total = 100000
	g := New(Config{Seed: 1})
	var counts [3]int
	var nextPerson, nextAuction int64 = FirstPersonID, FirstAuctionID
	var sizes [3]int
	for n := int64(0); n < total; n++ {
		k := KindOf(n)
		counts[k]++
		switch k {
		case KindPerson:
			p := g.Person(n)
			if p.ID != nextPerson {
				t.Fatalf("event %d: person %d, want %d", n, p.ID, nextPerson)
			}
			nextPerson++
			sizes[k] += 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + len(p.Extra)
		case KindAuction:
			a := g.Auction(n)
			if a.ID != nextAuction {
				t.Fatalf("event %d: auction %d, want %d", n, a.ID, nextAuction)
			}
			nextAuction++
			if a.Seller < FirstPersonID || a.Seller >= nextPerson+personIDLead {
				t.Fatalf("auction %d by unknown seller %d", a.ID, a.Seller)
			}
			if a.Expires <= a.DateTime || a.Reserve < a.InitialBid || a.Category < FirstCategoryID || a.Category >= FirstCategoryID+NumCategories {
				t.Fatalf("auction %+v", a)
			}
			sizes[k] += 8 + len(a.ItemName) + len(a.Description) + 5*8 + len(a.Extra)
		case KindBid:
			b := g.Bid(n)
			if b.Auction < FirstAuctionID || b.Auction >= nextAuction+auctionIDLead || b.Bidder < FirstPersonID || b.Bidder >= nextPerson+personIDLead {
				t.Fatalf("event %d: bid %+v on an auction or by a person that is not there (next %d, %d)", n, b, nextAuction, nextPerson)
			}
			if b.Price < 1 || b.Price > 100000000 || b.Channel == "" || b.URL == "" {
				t.Fatalf("bid %+v", b)
			}
			sizes[k] += 4*8 + len(b.Extra)
		}
	}
	if counts != [3]int{total * 1 / 50, total * 3 / 50, total * 46 / 50} {
		t.Fatalf("person/auction/bid counts %v, want 2 %%/6 %%/92 %%", counts)
	}
	// Padding brings each kind to its average size within a few bytes.
	for k, want := range []int{DefaultAvgPersonSize, DefaultAvgAuctionSize, DefaultAvgBidSize} {
		if avg := float64(sizes[k]) / float64(counts[k]); avg < float64(want)-3 || avg > float64(want)+3 {
			t.Errorf("%v: average size %.1f bytes, want about %d", Kind(k), avg, want)
		}
	}
}

// With the default ratios half the bids go to hot auctions and three in
// four to hot bidders, and three in four auctions to hot sellers; with
// ratio 1 there are no hot keys.
func TestHotKeys(t *testing.T) {
	share := func(cfg Config) (auctions, bidders, sellers float64) {
		g := New(cfg)
		var bids, hotA, hotB, aucs, hotS int
		for n := int64(0); n < 100000; n++ {
			switch KindOf(n) {
			case KindBid:
				b := g.Bid(n)
				bids++
				if (b.Auction-FirstAuctionID)%hotAuctionEvery == 0 {
					hotA++
				}
				if (b.Bidder-FirstPersonID)%hotPersonEvery == 1 {
					hotB++
				}
			case KindAuction:
				a := g.Auction(n)
				aucs++
				if (a.Seller-FirstPersonID)%hotPersonEvery == 0 {
					hotS++
				}
			}
		}
		return float64(hotA) / float64(bids), float64(hotB) / float64(bids), float64(hotS) / float64(aucs)
	}
	a, b, s := share(Config{Seed: 3})
	// Hot share plus the 1 % a uniform pick lands on a hot key anyway.
	if a < 0.48 || a > 0.53 || b < 0.73 || b > 0.77 || s < 0.72 || s > 0.78 {
		t.Fatalf("hot shares: auctions %.3f, bidders %.3f, sellers %.3f; want about 0.5, 0.75, 0.75", a, b, s)
	}
	a, b, s = share(Config{Seed: 3, HotAuctionRatio: 1, HotBidderRatio: 1, HotSellerRatio: 1})
	if a > 0.03 || b > 0.03 || s > 0.03 {
		t.Fatalf("ratio 1 still has hot keys: %.3f, %.3f, %.3f", a, b, s)
	}
}

func TestEventTimeSpacing(t *testing.T) {
	g := New(Config{EventRate: 1000})
	if g.Time(0) != DefaultStart || g.Time(1) != DefaultStart+1 || g.Time(5000) != DefaultStart+5000 {
		t.Fatalf("times %d %d %d", g.Time(0), g.Time(1), g.Time(5000))
	}
	g = New(Config{EventRate: 4000, Start: 1})
	if g.Time(3) != 1 || g.Time(4) != 2 || g.Bid(8).DateTime != 3 {
		t.Fatalf("times at 4000 events/s: %d %d %d", g.Time(3), g.Time(4), g.Bid(8).DateTime)
	}
}

func BenchmarkBid(b *testing.B) {
	g := New(Config{Seed: 1})
	b.ReportAllocs()
	for i := range b.N {
		_ = g.Bid(int64(i))
	}
}
