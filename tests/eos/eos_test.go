package eos

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/failpoint"
	"github.com/weir-stream/weir/internal/proc"
)

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// loadgen starts weir loadgen access-log in the background.
func (c *cluster) loadgen(events, seed, rate int) *proc.Process {
	return proc.Start(c.t, c.dir, c.bin, "loadgen", nil, "loadgen", "access-log", "--brokers", c.kafkaAddr,
		"--topic", "access-log", "--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed),
		"--partitions", "4", "--rate", strconv.Itoa(rate))
}

func waitExit(t *testing.T, p *proc.Process, timeout time.Duration) int {
	t.Helper()
	code, err := p.Wait(timeout)
	if err != nil {
		t.Fatalf("%v (log %s)", err, p.LogPath)
	}
	return code
}

// TestExactlyOnceSurvivesWorkerKills runs ip-visits with delivery
// exactly-once at parallelism 4 on three workers, a checkpoint every
// second, and SIGKILLs a worker running sink subtasks twice while events
// stream in (each time after the attempt completed a checkpoint, so open
// and pre-committed transactions are in flight). weir verify, which reads
// read_committed, must find every window exactly once: 0 lost, 0
// duplicated.
func TestExactlyOnceSurvivesWorkerKills(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	events, seed, rate, kills := envInt(t, "WEIR_EOS_EVENTS", 300_000), 21, 30_000, 2
	c := startCluster(t, proc.Binary(t), 3, 4)
	id := c.submit(c.ipVisitsEOS(), "-p", "4")
	c.waitRunning(id, 1, 60*time.Second)
	lg := c.loadgen(events, seed, rate)
	started := time.Now()
	span := time.Duration(events/rate) * time.Second
	next := 4
	for k := 1; k <= kills; k++ {
		j := c.job(id)
		chk := c.waitCheckpoint(id, j.Attempt, 90*time.Second)
		at := started.Add(span * time.Duration(k) / time.Duration(kills+1))
		proc.Eventually(t, time.Until(at)+time.Second, func() (bool, string) { return !time.Now().Before(at), "kill time" })
		ws := c.sinkWorkers(id)
		if len(ws) == 0 {
			t.Fatal("no worker runs the sink")
		}
		t.Logf("kill %d at +%s: SIGKILL %s in attempt %d (checkpoint %d completed)", k, time.Since(started).Round(time.Millisecond), ws[0], j.Attempt, chk)
		c.workers[ws[0]].Kill()
		c.startWorker(fmt.Sprintf("worker-%d", next), 4, nil)
		next++
		c.waitRunning(id, j.Attempt+1, 90*time.Second)
	}
	c.waitCheckpoint(id, c.job(id).Attempt, 90*time.Second)
	if code := waitExit(t, lg, 3*time.Minute); code != 0 {
		t.Fatalf("loadgen: exit %d (log %s)", code, lg.LogPath)
	}
	r := c.verifyCaughtUp(events, seed, 3*time.Minute)
	t.Logf("verify (read_committed): %s", r)
	checkExactlyOnce(t, r)
	if j := c.job(id); j.State != "RUNNING" || j.Restarts != kills {
		t.Fatalf("job after %d kills: %s, %d restarts, failure %q", kills, j.State, j.Restarts, j.FailureCause)
	}
}

// TestExactlyOnceSurvivesFailpointCrashes crashes workers (a binary built
// with -tags failpoints) exactly at the steps that matter: right after a
// sink's pre-commit, before the checkpoint is acknowledged; and while it
// commits a pending transaction after the checkpoint completed. Replacement
// workers start without failpoints. The output must still be exactly once.
func TestExactlyOnceSurvivesFailpointCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	events, seed, rate := envInt(t, "WEIR_EOS_EVENTS", 300_000), 22, 30_000
	bin := failpointBinary(t)
	c := startCluster(t, bin, 1, 4)
	// Two more workers armed with one failpoint each; the first worker has
	// none. With parallelism 4 over the three, each hosts sink subtasks.
	armed := map[string]string{
		"worker-2": failpoint.KafkaSinkAfterPreCommit + "=crash@6",
		"worker-3": failpoint.KafkaSinkCommit + "=crash@2",
	}
	for _, w := range []string{"worker-2", "worker-3"} {
		c.startWorker(w, 4, []string{failpoint.EnvVar + "=" + armed[w]})
	}
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		ws, err := c.api.Workers(c.ctx())
		return err == nil && len(ws) == 3, fmt.Sprintf("%d workers", len(ws))
	})
	id := c.submit(c.ipVisitsEOS(), "-p", "4")
	j := c.waitRunning(id, 1, 60*time.Second)
	if ws := c.sinkWorkers(id); len(ws) < 3 {
		t.Skipf("the sink runs on %v only; the armed workers must host sink subtasks", ws)
	}
	lg := c.loadgen(events, seed, rate)
	// The crashes may come in either order, the second possibly while the
	// job recovers from the first (a restore commits, too).
	next := 4
	for _, w := range []string{"worker-2", "worker-3"} {
		code := waitExit(t, c.workers[w], 2*time.Minute)
		if code != failpoint.CrashExitCode {
			t.Fatalf("%s exited %d, want the failpoint crash %d (log %s)", w, code, failpoint.CrashExitCode, c.workers[w].LogPath)
		}
		t.Logf("%s crashed at %s", w, armed[w])
		c.startWorker(fmt.Sprintf("worker-%d", next), 4, nil)
		next++
	}
	proc.Eventually(t, 90*time.Second, func() (bool, string) {
		j = c.job(id)
		if j.State == "FAILED" {
			t.Fatalf("job failed: %s", j.FailureCause)
		}
		return j.State == "RUNNING" && j.Restarts >= 2, fmt.Sprintf("%s after %d restarts, want RUNNING after 2", j.State, j.Restarts)
	})
	c.waitCheckpoint(id, c.job(id).Attempt, 90*time.Second)
	if code := waitExit(t, lg, 3*time.Minute); code != 0 {
		t.Fatalf("loadgen: exit %d (log %s)", code, lg.LogPath)
	}
	r := c.verifyCaughtUp(events, seed, 3*time.Minute)
	t.Logf("verify (read_committed): %s", r)
	checkExactlyOnce(t, r)
}
