package filesink

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-stream/weir/connectors/nexmark"
	"github.com/weir-stream/weir/internal/proc"
)

// TestRunningRescaleFromSavepoints runs a running count of bids per
// auction into an exactly-once file sink, stops it with a savepoint at
// parallelism 2, resumes at 3, stops again, and resumes at 1 to the end:
// the committed output of the three jobs holds, for every auction with k
// bids, exactly the updates 1 … k. Each restore splits or merges the key
// groups of the running node's keyed state.
func TestRunningRescaleFromSavepoints(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const count, rate = 20_000, 2_000
	c := proc.StartCluster(t, proc.Binary(t), 2, 3)
	out := filepath.Join(c.Allowed, "running")
	spec := filepath.Join(t.TempDir(), "job.yaml")
	job := fmt.Sprintf(`name: running-rescale
parallelism: 2
checkpoint: {interval: 300ms}
pipeline:
  - name: gen
    source:
      datagen: {profile: nexmark, seed: 5, count: %d, rate: %d, nexmark: {avg_bid_size: 40}}
      event_time: {field: date_time}
  - filter: event_type == "bid"
  - key_by: auction
  - name: totals
    running: {aggregates: {bids: count()}}
  - name: out
    sink: {file: {path: %s}}
`, count, rate, out)
	if err := os.WriteFile(spec, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	rescaleThroughSavepoints(t, c, spec, stage{2, true}, stage{3, true}, stage{1, false})
	bids := map[int64]int64{}
	g := nexmark.New(nexmark.Config{Seed: 5, EventRate: rate, AvgBidSize: 40})
	for n := range int64(count) {
		if nexmark.KindOf(n) == nexmark.KindBid {
			bids[g.Bid(n).Auction]++
		}
	}
	want := map[string]int{}
	for a, k := range bids {
		for i := int64(1); i <= k; i++ {
			want[canonicalLine(t, map[string]any{"auction": a, "bids": i})]++
		}
	}
	got := committedLines(t, out)
	var lost, dup, extra int
	for l, n := range want {
		switch g := got[l]; {
		case g < n:
			lost += n - g
		case g > n:
			dup += g - n
		}
	}
	for l, n := range got {
		if want[l] == 0 {
			extra += n
		}
	}
	t.Logf("%d auctions, %d updates in the model", len(bids), len(want))
	if lost+dup+extra > 0 {
		t.Fatalf("committed updates: %d lost, %d duplicated, %d not in the model", lost, dup, extra)
	}
}

// committedLines counts the lines of the committed part files in out, as
// canonicalLine renders them.
func committedLines(t *testing.T, out string) map[string]int {
	t.Helper()
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // in progress, never committed
		}
		b, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s: torn line %q", e.Name(), l)
			}
			got[canonicalLine(t, m)]++
		}
	}
	return got
}
