package pipeline

import (
	"testing"

	"github.com/weir-stream/weir/connectors/nexmark"
)

// Plain-Go models of the Nexmark queries that need a join (q3, q4, q8,
// q9), written ahead of the operators so that the queries' specs can be
// checked against them once joins exist. Each model follows the published
// Flink SQL (nexmark/nexmark, nexmark-flink/src/main/resources/queries)
// over a bounded stream and gives the final result: an updating query's
// last value per key, a windowed one's rows. The tests run the models,
// check them against each other where two queries share a part, and skip
// naming what is missing.

// nexmarkEvents calls the functions with every event of the first count
// of the stream of cfg, in order.
func nexmarkEvents(cfg nexmark.Config, count int64, person func(nexmark.Person), auction func(nexmark.Auction), bid func(nexmark.Bid)) {
	g := nexmark.New(cfg)
	for n := range count {
		switch nexmark.KindOf(n) {
		case nexmark.KindPerson:
			person(g.Person(n))
		case nexmark.KindAuction:
			auction(g.Auction(n))
		default:
			bid(g.Bid(n))
		}
	}
}

// q3Row is a row of q3: the seller's name, city and state, the auction id.
type q3Row struct {
	Name, City, State string
	ID                int64
}

// modelQ3, local item suggestion:
//
//	SELECT P.name, P.city, P.state, A.id
//	FROM auction AS A INNER JOIN person AS P on A.seller = P.id
//	WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
//
// A regular (unwindowed) inner join: over a bounded input its rows are
// every matching pair, whichever side came first (an auction may name a
// seller a few people ahead).
func modelQ3(cfg nexmark.Config, count int64) []q3Row {
	people := map[int64]nexmark.Person{}
	var auctions []nexmark.Auction
	nexmarkEvents(cfg, count, func(p nexmark.Person) {
		if p.State == "OR" || p.State == "ID" || p.State == "CA" {
			people[p.ID] = p
		}
	}, func(a nexmark.Auction) {
		if a.Category == 10 {
			auctions = append(auctions, a)
		}
	}, func(nexmark.Bid) {})
	var rows []q3Row
	for _, a := range auctions {
		if p, ok := people[a.Seller]; ok {
			rows = append(rows, q3Row{p.Name, p.City, p.State, a.ID})
		}
	}
	return rows
}

// q9Row is a row of q9: an auction with its winning bid.
type q9Row struct {
	Auction nexmark.Auction
	Bid     nexmark.Bid
	// Tied counts other bids of the same price and time as Bid, which
	// ROW_NUMBER leaves in any order.
	Tied int
}

// modelQ9, winning bids:
//
//	SELECT A.*, B.auction, B.bidder, B.price, B.dateTime, B.extra FROM (
//	  SELECT A.*, B.*, ROW_NUMBER() OVER (PARTITION BY A.id
//	      ORDER BY B.price DESC, B.dateTime ASC) AS rownum
//	  FROM auction A, bid B
//	  WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires)
//	WHERE rownum <= 1;
//
// Per auction with at least one bid within its life (both ends included),
// the highest bid, the earliest of equal ones.
func modelQ9(cfg nexmark.Config, count int64) map[int64]q9Row {
	auctions := map[int64]nexmark.Auction{}
	var bids []nexmark.Bid
	nexmarkEvents(cfg, count, func(nexmark.Person) {}, func(a nexmark.Auction) {
		auctions[a.ID] = a
	}, func(b nexmark.Bid) {
		bids = append(bids, b)
	})
	rows := map[int64]q9Row{}
	for _, b := range bids {
		a, ok := auctions[b.Auction]
		if !ok || b.DateTime < a.DateTime || b.DateTime > a.Expires {
			continue
		}
		cur, ok := rows[a.ID]
		switch {
		case !ok || b.Price > cur.Bid.Price || b.Price == cur.Bid.Price && b.DateTime < cur.Bid.DateTime:
			rows[a.ID] = q9Row{Auction: a, Bid: b}
		case b.Price == cur.Bid.Price && b.DateTime == cur.Bid.DateTime:
			cur.Tied++
			rows[a.ID] = cur
		}
	}
	return rows
}

// modelQ4, average price for a category:
//
//	SELECT Q.category, AVG(Q.final) FROM (
//	  SELECT MAX(B.price) AS final, A.category FROM auction A, bid B
//	  WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
//	  GROUP BY A.id, A.category) Q
//	GROUP BY Q.category;
//
// The final value per category of the updating result: the mean over the
// category's auctions with a bid within their life of each one's highest
// such bid. (AVG of BIGINT is a BIGINT in Flink, truncated; the model
// keeps the exact mean, and a spec with a float avg should be compared
// with it.)
func modelQ4(cfg nexmark.Config, count int64) map[int64]float64 {
	auctions := map[int64]nexmark.Auction{}
	final := map[int64]int64{}
	var bids []nexmark.Bid
	nexmarkEvents(cfg, count, func(nexmark.Person) {}, func(a nexmark.Auction) {
		auctions[a.ID] = a
	}, func(b nexmark.Bid) {
		bids = append(bids, b)
	})
	for _, b := range bids {
		a, ok := auctions[b.Auction]
		if !ok || b.DateTime < a.DateTime || b.DateTime > a.Expires {
			continue
		}
		if p, ok := final[a.ID]; !ok || b.Price > p {
			final[a.ID] = b.Price
		}
	}
	sum, n := map[int64]int64{}, map[int64]int64{}
	for id, p := range final {
		c := auctions[id].Category
		sum[c] += p
		n[c]++
	}
	avg := map[int64]float64{}
	for c := range sum {
		avg[c] = float64(sum[c]) / float64(n[c])
	}
	return avg
}

// q8Row is a row of q8: a new person who opened an auction in the same
// 10 s window, with the window's start.
type q8Row struct {
	ID        int64
	Name      string
	StartTime int64
}

// modelQ8, monitor new users:
//
//	SELECT P.id, P.name, P.starttime
//	FROM (SELECT id, name, window_start AS starttime, window_end AS endtime
//	      FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//	      GROUP BY id, name, window_start, window_end) P
//	JOIN (SELECT seller, window_start AS starttime, window_end AS endtime
//	      FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//	      GROUP BY seller, window_start, window_end) A
//	ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime;
//
// One row per person and window in which the person both appeared and
// sold (the GROUP BYs make each side distinct per key and window).
func modelQ8(cfg nexmark.Config, count int64) []q8Row {
	type pw struct {
		id, start int64
	}
	names := map[pw]string{}
	sold := map[pw]bool{}
	nexmarkEvents(cfg, count, func(p nexmark.Person) {
		names[pw{p.ID, p.DateTime - p.DateTime%10000}] = p.Name
	}, func(a nexmark.Auction) {
		sold[pw{a.Seller, a.DateTime - a.DateTime%10000}] = true
	}, func(nexmark.Bid) {})
	var rows []q8Row
	for k, name := range names {
		if sold[k] {
			rows = append(rows, q8Row{k.id, name, k.start})
		}
	}
	return rows
}

const modelsCount = 50000

// The models' rows are non-trivial over the tests' input, and q4's
// highest bid per auction is q9's winning bid's price.
func TestNexmarkJoinModels(t *testing.T) {
	cfg := nexmark.Config{Seed: 1, EventRate: windowQueriesRate}
	q3 := modelQ3(cfg, modelsCount)
	q4 := modelQ4(cfg, modelsCount)
	q8 := modelQ8(cfg, modelsCount)
	q9 := modelQ9(cfg, modelsCount)
	if len(q3) < 10 || len(q4) != nexmark.NumCategories || len(q8) < 10 || len(q9) < 100 {
		t.Fatalf("models too small to tell: q3 %d rows, q4 %d categories, q8 %d rows, q9 %d auctions", len(q3), len(q4), len(q8), len(q9))
	}
	sum, n := map[int64]int64{}, map[int64]int64{}
	for _, r := range q9 {
		sum[r.Auction.Category] += r.Bid.Price
		n[r.Auction.Category]++
	}
	for c, avg := range q4 {
		if want := float64(sum[c]) / float64(n[c]); avg != want {
			t.Fatalf("category %d: q4's mean of final prices %v, q9's winning bids give %v", c, avg, want)
		}
	}
	for _, r := range q3 {
		if r.State != "OR" && r.State != "ID" && r.State != "CA" {
			t.Fatalf("q3 row %+v: state not in OR, ID, CA", r)
		}
	}
	t.Logf("q3 %d rows, q4 %v, q8 %d rows, q9 %d auctions", len(q3), q4, len(q8), len(q9))
}

// The join queries, to be checked against their models once the spec has
// the operators they need.
func TestNexmarkQ3(t *testing.T) {
	t.Skip("q3 needs a join of auctions and persons on seller = id (an updating inner join); the model is modelQ3")
}

func TestNexmarkQ4(t *testing.T) {
	t.Skip("q4 needs an interval join of bids to their auction (bid time within the auction's date_time..expires) and an updating aggregate over its results; the model is modelQ4")
}

func TestNexmarkQ8(t *testing.T) {
	t.Skip("q8 needs a windowed join (tumbling 10 s) of persons and auctions on id = seller; the model is modelQ8")
}

func TestNexmarkQ9(t *testing.T) {
	t.Skip("q9 needs an interval join of bids to their auction and a top-1 per auction over its results; the model is modelQ9")
}
