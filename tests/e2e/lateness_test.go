package e2e

import (
	"testing"
	"time"
)

// TestLateEventsDroppedAfterRestore makes the backlog after a restore
// large: it kills a worker after a checkpoint and starts a replacement only
// after loadgen wrote all its input, so the restored sources replay minutes
// of event time with partitions running at different speeds. The job must
// still drop exactly the late events an uninterrupted run drops: lateness
// is judged against each record's own partition watermark
// (dataflow.Record.SourceWatermark), not only the window's, which a slower
// partition holds back during the replay. (Before that rule, 95–114
// windows per run counted late events here.)
func TestLateEventsDroppedAfterRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const events, seed = 400000, 13
	c := startCluster(t, 2, 4)
	spec := c.ipVisitsSpec("checkpoint: {interval: 1s}\nrestart: {strategy: fixed, attempts: 3, delay: 0s}\n")
	id := c.Submit(spec, "-p", "4") // 8 slots: both workers full
	c.WaitRunning(id, 1, 60*time.Second)
	lg := c.startLoadgen(events, seed, 50000)
	chk := c.WaitCheckpoint(id, 1, 0, 60*time.Second)
	victim := c.workersOf(id)[0]
	c.Workers[victim].Kill()
	t.Logf("killed %s after checkpoint %d; the job waits for slots while loadgen writes", victim, chk.ID)
	lg.wait(2 * time.Minute)
	c.StartWorker("worker-3", 4, nil)
	c.WaitRunning(id, 2, 60*time.Second)

	r := c.verifyCaughtUp(events, seed, 2*time.Minute, "--allow-duplicates")
	t.Logf("verify: %s", r)
	if r.Wrong+r.Unexpected > 0 {
		t.Fatalf("after a restore the job counted late events it must drop: %d wrong, %d unexpected windows (%d explained by late events)",
			r.Wrong, r.Unexpected, r.LateCounted)
	}
}
