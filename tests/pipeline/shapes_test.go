package pipeline

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/nexmark"
	"github.com/weir-stream/weir/internal/cluster"
)

// The keyed built-in operators (dedup, running, top_n) on a cluster over
// the nexmark generator: one source subtask, so each key's records reach
// its operator subtask in the generator's order, two operator subtasks,
// and the output checked against a plain-Go model over the generator.

const shapesCount = 6000

const shapesSource = `
  - name: nexmark
    parallelism: 1
    source:
      datagen: {profile: nexmark, seed: 3, count: {{count}}}
      event_time: {field: date_time}
  - name: bid
    parallelism: 1
    filter: event_type == "bid"
  - name: b
    parallelism: 1
    select: {auction: auction, bidder: bidder, price: price, date_time: date_time}
`

// shapesKeyBy keys the stream at parallelism 1, so one channel carries
// each key to its operator subtask in order.
const shapesKeyBy = `
  - name: keyed
    parallelism: 1
    key_by: `

func shapesBids(f func(n int64, b nexmark.Bid)) {
	g := nexmark.New(nexmark.Config{Seed: 3})
	for n := range int64(shapesCount) {
		if nexmark.KindOf(n) == nexmark.KindBid {
			f(n, g.Bid(n))
		}
	}
}

// dedup keyed by bidder passes a bidder's first bid and then the first
// one at least 50 ms of event time after the last that passed.
func TestDedupPipeline(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 6})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`
name: dedup
parallelism: 2
pipeline:`+shapesSource+shapesKeyBy+`bidder
  - name: first
    dedup: {within: 50ms}
  - sink: {file: {path: "{{out}}"}}
`, "{{count}}", "6000", "{{out}}", out))
	c.WaitState(t, id, "FINISHED", 60*time.Second)
	var want []string
	until := map[int64]int64{}
	shapesBids(func(_ int64, b nexmark.Bid) {
		if u, ok := until[b.Bidder]; ok && b.DateTime < u {
			return
		}
		until[b.Bidder] = b.DateTime + 50
		want = append(want, line(map[string]any{"auction": b.Auction, "bidder": b.Bidder, "price": b.Price, "date_time": b.DateTime}))
	})
	got := concat(readSubtasks(t, out, 2))
	if len(want) >= 4000 || len(want) < 100 {
		t.Fatalf("model passes %d bids: the test needs duplicates and survivors", len(want))
	}
	sameLines(t, "dedup", got, want)
}

// Nexmark q2 (examples/nexmark/q2.yaml) at parallelism 2 writes, per
// subtask and in order, the auction and price of the bids of the
// subtask's share whose auction is a multiple of 123, as a plain-Go
// model of the published query computes them.
func TestNexmarkQ2(t *testing.T) {
	const count = 30000
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2})
	out := filepath.Join(t.TempDir(), "q2")
	id := c.Submit(t, exampleQuery(t, "q2", count, 2, out))
	c.WaitState(t, id, "FINISHED", 60*time.Second)
	got := readSubtasks(t, out, 2)
	g := nexmark.New(nexmark.Config{Seed: 1})
	total := 0
	for sub := range 2 {
		var want []string
		for n := int64(sub); n < count; n += 2 {
			if nexmark.KindOf(n) != nexmark.KindBid {
				continue
			}
			if b := g.Bid(n); b.Auction%123 == 0 {
				want = append(want, line(map[string]any{"auction": b.Auction, "price": b.Price}))
			}
		}
		total += len(want)
		equalLines(t, fmt.Sprintf("q2 subtask %d", sub), got[sub], want)
	}
	if total < 10 {
		t.Fatalf("the model selects %d bids: too few to tell", total)
	}
}

// running keyed by auction emits every bid's auction with its running
// count, volume and highest price so far.
func TestRunningPipeline(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 6})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`
name: running
parallelism: 2
pipeline:`+shapesSource+shapesKeyBy+`auction
  - name: totals
    running:
      aggregates: {bids: count(), volume: sum(price), top: max(price)}
  - sink: {file: {path: "{{out}}"}}
`, "{{count}}", "6000", "{{out}}", out))
	c.WaitState(t, id, "FINISHED", 60*time.Second)
	type acc struct{ n, sum, top int64 }
	st := map[int64]*acc{}
	var want []string
	shapesBids(func(_ int64, b nexmark.Bid) {
		a := st[b.Auction]
		if a == nil {
			a = &acc{top: b.Price}
			st[b.Auction] = a
		}
		a.n++
		a.sum += b.Price
		a.top = max(a.top, b.Price)
		want = append(want, line(map[string]any{"auction": b.Auction, "bids": a.n, "volume": a.sum, "top": a.top}))
	})
	sameLines(t, "running", concat(readSubtasks(t, out, 2)), want)
}

// top_n after a window, Nexmark q5's shape: bids per auction per 100 ms,
// then per window the three auctions with the most bids, ranked.
func TestTopNPipeline(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 6})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`
name: topn
parallelism: 2
pipeline:`+shapesSource+shapesKeyBy+`auction
  - name: counts
    window: {tumbling: 100ms, aggregates: {bids: count()}}
  - key_by: window_end
  - name: hot
    top_n: {n: 3, order_by: "bids * 1000000 - auction DESC"}
  - sink: {file: {path: "{{out}}"}}
`, "{{count}}", "6000", "{{out}}", out))
	c.WaitState(t, id, "FINISHED", 60*time.Second)
	type win struct{ auction, end int64 }
	counts := map[win]int64{}
	shapesBids(func(_ int64, b nexmark.Bid) {
		counts[win{b.Auction, b.DateTime - b.DateTime%100 + 100}]++
	})
	byEnd := map[int64][]int64{}
	for w := range counts {
		byEnd[w.end] = append(byEnd[w.end], w.auction)
	}
	var want []string
	for end, auctions := range byEnd {
		slices.SortFunc(auctions, func(a, b int64) int {
			if c := cmp.Compare(counts[win{b, end}], counts[win{a, end}]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		for i, a := range auctions[:min(3, len(auctions))] {
			want = append(want, line(map[string]any{"auction": a, "window_start": end - 100, "window_end": end,
				"bids": counts[win{a, end}], "rank": i + 1}))
		}
	}
	if len(byEnd) < 5 {
		t.Fatalf("%d windows: too few to tell", len(byEnd))
	}
	sameLines(t, "top_n", concat(readSubtasks(t, out, 2)), want)
}
