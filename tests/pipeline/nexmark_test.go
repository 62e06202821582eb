package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/nexmark"
	jobspec "github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/cluster"
)

// exampleQuery reads examples/nexmark/<q>.yaml with count events at
// parallelism par, its discard sink replaced by a file sink at out.
func exampleQuery(t testing.TB, q string, count int64, par int, out string) string {
	t.Helper()
	s := exampleSpec(t, q, count, par)
	if !strings.Contains(s, "discard: {}") {
		t.Fatalf("%s has no discard sink to replace", q)
	}
	return strings.Replace(s, "discard: {}", fmt.Sprintf("file: {path: %q}", out), 1)
}

// exampleSpec reads examples/nexmark/<q>.yaml with count events at
// parallelism par.
func exampleSpec(t testing.TB, q string, count int64, par int) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "nexmark", q+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err = jobspec.ExpandEnv(data, func(k string) (string, bool) {
		switch k {
		case "COUNT":
			return fmt.Sprint(count), true
		case "PARALLELISM":
			return fmt.Sprint(par), true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The Nexmark examples q0 and q1 on a cluster at parallelism 2 write, per
// subtask and in order, exactly what a plain Go model of the published
// query computes from the generator: every bid of the subtask's share,
// with the query's fields (q1: the price in euros).
func TestNexmarkExamples(t *testing.T) {
	const count = 4000
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2})
	g := nexmark.New(nexmark.Config{Seed: 1})
	for _, q := range []string{"q0", "q1"} {
		out := filepath.Join(t.TempDir(), q)
		id := c.Submit(t, exampleQuery(t, q, count, 2, out))
		c.WaitState(t, id, "FINISHED", 60*time.Second)
		got := readSubtasks(t, out, 2)
		for sub := range 2 {
			var want []string
			for n := int64(sub); n < count; n += 2 {
				if nexmark.KindOf(n) != nexmark.KindBid {
					continue
				}
				b := g.Bid(n)
				var price any = b.Price
				if q == "q1" {
					price = 0.908 * float64(b.Price)
				}
				want = append(want, line(map[string]any{"auction": b.Auction, "bidder": b.Bidder, "price": price,
					"date_time": b.DateTime, "extra": b.Extra}))
			}
			equalLines(t, fmt.Sprintf("%s subtask %d", q, sub), got[sub], want)
		}
	}
}
