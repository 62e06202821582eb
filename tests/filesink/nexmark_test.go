package filesink

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/nexmark"
	"github.com/weir-stream/weir/internal/proc"
)

// TestNexmarkExactlyOnceWithKills runs Nexmark q0 (every bid's auction,
// bidder, price, date_time and extra) at parallelism 2 with checkpoints
// every 300ms into an exactly-once file sink, SIGKILLs a worker running
// the sink twice, each after a checkpoint completed, and checks that the
// committed output holds every bid of the generated events exactly once:
// the nexmark source resumes from its checkpointed position with nothing
// lost or repeated.
func TestNexmarkExactlyOnceWithKills(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := proc.StartCluster(t, proc.Binary(t), 3, 2)
	out := filepath.Join(c.Allowed, "nexmark")
	id := c.Submit(nexmarkQ0(t, out))
	c.WaitRunning(id, 1, 60*time.Second)
	for k := 1; k <= 2; k++ {
		j := c.Job(id)
		chk := twoCheckpoints(c, id, j.Attempt)
		victim := sinkWorker(c, id)
		t.Logf("kill %d: SIGKILL %s in attempt %d (checkpoint %d completed)", k, victim, j.Attempt, chk.ID)
		c.Workers[victim].Kill()
		c.StartWorker(fmt.Sprintf("worker-%d", 3+k), 2, nil)
		c.WaitRunning(id, j.Attempt+1, 60*time.Second)
	}
	end := c.WaitEnded(id, 3*time.Minute)
	if end.State != "FINISHED" {
		t.Fatalf("job %s ended %s: %s", id, end.State, end.FailureCause)
	}
	if end.Restarts < 2 {
		t.Fatalf("%d restarts, want at least 2", end.Restarts)
	}

	t.Logf("%d restarts", end.Restarts)
	checkQ0(t, out)
}

// Nexmark q0 over nexCount events at nexRate per second.
const nexCount, nexRate = 60_000, 2_000

// nexmarkQ0 writes the spec of q0 into a file sink at out, with
// checkpoints every 300ms, and returns the spec's path.
func nexmarkQ0(t *testing.T, out string) string {
	t.Helper()
	spec := filepath.Join(t.TempDir(), "job.yaml")
	job := fmt.Sprintf(`name: nexmark-eos
parallelism: 2
checkpoint: {interval: 300ms}
restart: {strategy: fixed, attempts: 20, delay: 500ms}
pipeline:
  - name: gen
    source:
      datagen: {profile: nexmark, seed: 5, count: %d, rate: %d, nexmark: {avg_bid_size: 40}}
      event_time: {field: date_time}
  - filter: event_type == "bid"
  - select: {auction: auction, bidder: bidder, price: price, date_time: date_time, extra: extra}
  - name: out
    sink: {file: {path: %s}}
`, nexCount, nexRate, out)
	if err := os.WriteFile(spec, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return spec
}

// checkQ0 checks that the committed files in the directories outs hold
// every bid of q0's events exactly once, as a model computes them from the
// generator.
func checkQ0(t *testing.T, outs ...string) {
	t.Helper()
	want := map[string]int{}
	g := nexmark.New(nexmark.Config{Seed: 5, EventRate: nexRate, AvgBidSize: 40})
	for n := range int64(nexCount) {
		if nexmark.KindOf(n) != nexmark.KindBid {
			continue
		}
		b := g.Bid(n)
		want[canonicalLine(t, map[string]any{"auction": b.Auction, "bidder": b.Bidder, "price": b.Price,
			"date_time": b.DateTime, "extra": b.Extra})]++
	}
	got := map[string]int{}
	for _, out := range outs {
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
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
	}
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
	t.Logf("%d distinct bids in the model", len(want))
	if lost+dup+extra > 0 {
		t.Fatalf("committed output is not exactly once: %d bids lost, %d duplicated, %d not in the model", lost, dup, extra)
	}
}

// TestNexmarkRescaleFromSavepoints stops q0 at parallelism 2 with a
// savepoint, resumes it from there at parallelism 3, stops that soon after
// it runs (while its sources may still skip what the old ones emitted),
// and resumes it again at parallelism 1 to the end: the three jobs' output
// together holds every bid exactly once.
func TestNexmarkRescaleFromSavepoints(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := proc.StartCluster(t, proc.Binary(t), 2, 3)
	// One directory: a restored file sink finds the parts of its
	// savepoint there, and the jobs' part names differ by job id.
	out := filepath.Join(c.Allowed, "nexmark")
	rescaleThroughSavepoints(t, c, nexmarkQ0(t, out), stage{2, true}, stage{3, false}, stage{1, false})
	checkQ0(t, out)
}

// canonicalLine renders a record as JSON with sorted keys, numbers as
// float64 (the reader's view of both sides).
func canonicalLine(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(back)
	return string(b)
}
