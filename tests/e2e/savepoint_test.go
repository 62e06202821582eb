package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/internal/proc"
)

// TestStopWithSavepointRescale stops ip-visits at parallelism 2 with a
// savepoint halfway through its input (weir savepoint --stop --wait),
// checks the job ends FINISHED and that weir checkpoint inspect reads the
// savepoint (operators, Kafka offsets), then submits the job again from it
// at parallelism 4 and lets it finish the input. The output must be exactly
// what an uninterrupted run writes: the stop emitted no window early or
// twice, and the restore at another parallelism lost no state.
func TestStopWithSavepointRescale(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const events, seed = 200000, 3
	c := startCluster(t, 2, 4)
	spec := c.ipVisitsSpec("checkpoint: {interval: 1s}\n")
	first := c.Submit(spec, "-p", "2")
	c.WaitRunning(first, 1, 60*time.Second)
	lg := c.startLoadgen(events, seed, 20000)

	// Midway: the sources have read a good part of the input (and loadgen
	// is still writing the rest).
	proc.Eventually(t, 2*time.Minute, func() (bool, string) {
		n := c.sourceRecordsIn(first)
		return n >= events/3, "source records read: " + strconv.FormatInt(n, 10)
	})
	read := c.sourceRecordsIn(first)
	out, code := c.Weir("savepoint", first, "--stop", "--wait")
	if code != 0 {
		t.Fatalf("savepoint --stop --wait: exit %d\n%s", code, out)
	}
	uri := strings.TrimSpace(out)
	t.Logf("stopped %s with savepoint %s after about %d source records", first, uri, read)
	if !strings.Contains(uri, "/savepoints/sp-") {
		t.Fatalf("savepoint --stop --wait printed %q, want the savepoint's URI", out)
	}
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		s := c.jobState(first)
		return s == "FINISHED", s
	})
	if rs := c.restarts(first).Restarts; len(rs) != 0 {
		t.Fatalf("the stopped job restarted: %+v", rs)
	}
	// weir savepoints lists it under the name of its directory.
	out, code = c.Weir("savepoints", first)
	if sp := uri[strings.LastIndex(uri, "/")+1:]; code != 0 || !strings.Contains(out, sp+"  ") || !strings.Contains(out, "COMPLETED") || !strings.Contains(out, uri) {
		t.Fatalf("weir savepoints %s: exit %d, want %s COMPLETED at %s:\n%s", first, code, sp, uri, out)
	}

	out, code = c.Weir("checkpoint", "inspect", uri, "-o", "json")
	if code != 0 {
		t.Fatalf("checkpoint inspect: exit %d\n%s", code, out)
	}
	var in checkpoint.Inspection
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("checkpoint inspect -o json: %v\n%s", err, out)
	}
	if in.Kind != "savepoint" || in.JobID != first || in.Problems != 0 {
		t.Errorf("inspect: kind %q job %q problems %d", in.Kind, in.JobID, in.Problems)
	}
	nodes := map[string]bool{}
	partitions := map[int32]int64{}
	for _, op := range in.Operators {
		nodes[op.Node] = true
		for _, s := range op.Subtasks {
			for _, o := range s.Offsets {
				if o.Topic == "access-log" {
					partitions[o.Partition] = o.Offset
				}
			}
		}
	}
	for _, n := range []string{"access-log", "per-minute"} {
		if !nodes[n] {
			t.Errorf("inspect lists no operator %s: %v", n, nodes)
		}
	}
	var total int64
	for _, o := range partitions {
		total += o
	}
	if len(partitions) != 4 || total <= 0 || total >= events {
		t.Errorf("savepoint offsets of access-log %v (sum %d): want all 4 partitions, midway through %d events", partitions, total, events)
	}
	t.Logf("savepoint %d: %d operators, %d state bytes, %d keys, next offsets %v (sum %d)",
		in.CheckpointID, len(in.Operators), in.StateBytes, in.Keys, partitions, total)

	second := c.Submit(spec, "--from-savepoint", uri, "-p", "4")
	j := c.WaitRunning(second, 1, 60*time.Second)
	for _, v := range j.Vertices {
		if v.Parallelism != 4 {
			t.Errorf("restored job: vertex %s at parallelism %d, want 4", v.ID, v.Parallelism)
		}
	}
	cs := c.Checkpoints(second)
	if cs.LatestRestore == nil || cs.LatestRestore.CheckpointID != in.CheckpointID {
		t.Errorf("restored job's latest_restore %+v, want savepoint %d", cs.LatestRestore, in.CheckpointID)
	}
	lg.wait(3 * time.Minute)
	r := c.verifyCaughtUp(events, seed, 3*time.Minute)
	t.Logf("verify: %d windows matched, %d pending", r.Matched, r.Pending)
	checkOutput(t, r, false)
	if s := c.jobState(second); s != "RUNNING" {
		t.Fatalf("restored job is %s", s)
	}
}
