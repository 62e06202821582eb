package eos

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// TestRollingRestartExactlyOnce replaces every worker of a three-worker
// cluster, one at a time, while an exactly-once ip-visits job at
// parallelism 4 reads a stream: each worker gets SIGTERM, drains (the job
// stops at a checkpoint and restarts from it on the others) and exits 0; a
// replacement starts and the job runs again before the next one goes.
// weir verify (read_committed) must find every window exactly once, and
// every restart must be a drain, none a failure.
func TestRollingRestartExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	events, seed, rate := envInt(t, "WEIR_EOS_EVENTS", 300_000), 23, 20_000
	c := startCluster(t, proc.Binary(t), 3, 4)
	id := c.Submit(c.ipVisitsEOS(), "-p", "4")
	c.WaitRunning(id, 1, 60*time.Second)
	lg := c.loadgen(events, seed, rate)
	started := time.Now()
	span := time.Duration(events/rate) * time.Second
	drains := 0
	for k := 1; k <= 3; k++ {
		victim := fmt.Sprintf("worker-%d", k)
		j := c.Job(id)
		chk := c.WaitCheckpoint(id, j.Attempt, 0, 90*time.Second).ID
		// Spread over the load, so each attempt has records in flight.
		at := started.Add(span * time.Duration(k) / 4)
		proc.Eventually(t, time.Until(at)+time.Second, func() (bool, string) { return !time.Now().Before(at), "drain time" })
		j = c.Job(id)
		held := false
		for _, v := range j.Vertices {
			for _, s := range v.Subtasks {
				held = held || s.Worker == victim
			}
		}
		t.Logf("drain %d at +%s: SIGTERM %s (holds subtasks: %v) in attempt %d (checkpoint %d completed)",
			k, time.Since(started).Round(time.Millisecond), victim, held, j.Attempt, chk)
		if err := c.Workers[victim].Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code := waitExit(t, c.Workers[victim], 90*time.Second)
		if code != 0 {
			t.Fatalf("%s exited %d after SIGTERM, want 0 (drained; log %s)", victim, code, c.Workers[victim].LogPath)
		}
		if held {
			drains++
			// The job's attempt there ended (a restart is recorded)
			// before the worker could exit.
			if nj := c.Job(id); nj.Restarts <= j.Restarts {
				t.Fatalf("%s exited while the job still runs attempt %d there (%s, %d restarts)", victim, nj.Attempt, nj.State, nj.Restarts)
			}
		}
		c.StartWorker(fmt.Sprintf("worker-%d", k+3), 4, nil)
		c.WaitWorkers(3)
		c.WaitRunning(id, j.Attempt+1, 90*time.Second)
	}
	if drains == 0 {
		t.Fatal("no drained worker held a subtask of the job")
	}
	c.WaitCheckpoint(id, c.Job(id).Attempt, 0, 90*time.Second)
	if code := waitExit(t, lg, 3*time.Minute); code != 0 {
		t.Fatalf("loadgen: exit %d (log %s)", code, lg.LogPath)
	}
	r := c.verifyCaughtUp(events, seed, 3*time.Minute)
	t.Logf("verify (read_committed): %s", r)
	checkExactlyOnce(t, r)

	rs, err := c.API.Restarts(c.Ctx(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Restarts) != drains {
		t.Fatalf("%d restarts for %d drains: %+v", len(rs.Restarts), drains, rs.Restarts)
	}
	history := c.Checkpoints(id).History
	for _, r := range rs.Restarts {
		if r.Reason != "drain" || r.RestoredFrom == 0 || r.GaveUp {
			t.Fatalf("restart %+v: want a drain restored from its stop checkpoint, not a failure restart", r)
		}
		// It restored the stop checkpoint, the failed attempt's last: the
		// sources read nothing after its barrier, so nothing is replayed.
		for _, h := range history {
			if h.Attempt != r.FailedAttempt || h.Status != "COMPLETED" {
				continue
			}
			if h.ID > r.RestoredFrom || (h.ID == r.RestoredFrom && (!h.Stop || h.Savepoint)) {
				t.Fatalf("attempt %d restored %d, but its checkpoint %+v is newer or not a stop checkpoint", r.FailedAttempt, r.RestoredFrom, h)
			}
		}
		t.Logf("restart of attempt %d: %s, restored from %d, detected → running in %s", r.FailedAttempt, r.Reason, r.RestoredFrom,
			r.RunningAt.Sub(r.DetectedAt).Round(time.Millisecond))
	}
	if j := c.Job(id); j.State != "RUNNING" {
		t.Fatalf("job after the rolling restart: %s, failure %q", j.State, j.FailureCause)
	}
}
