package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// TestCorruptCheckpointFallsBack damages a state file of the latest
// completed checkpoint on disk (same size, flipped bytes, so only its
// CRC-32C tells) and SIGKILLs a worker. The coordinator restores from that
// checkpoint, a subtask finds the file corrupt, and the next restart must
// fall back to the previous retained checkpoint, with the restart record's
// fallback reason naming the damaged file; the output then has no lost,
// wrong or unexpected window.
func TestCorruptCheckpointFallsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const events, seed = 200000, 5
	c := startCluster(t, 2, 4)
	// min_pause keeps the next checkpoint from completing between the
	// damage and the kill.
	spec := c.ipVisitsSpec("checkpoint: {interval: 2s, min_pause: 2s}\nrestart: {strategy: fixed, attempts: 5, delay: 500ms}\n")
	id := c.Submit(spec, "-p", "2")
	c.WaitRunning(id, 1, 60*time.Second)
	lg := c.startLoadgen(events, seed, 25000)

	prev := c.WaitCheckpoint(id, 1, 0, 90*time.Second)
	latest := c.WaitCheckpoint(id, 1, prev.ID, 90*time.Second)
	dir := strings.TrimPrefix(latest.Location, "file://")
	damaged := damageLargestStateFile(t, dir)
	victim := c.workersOf(id)[0]
	t.Logf("checkpoint %d completed, %d before it; flipped bytes in %s; SIGKILL %s", latest.ID, prev.ID, damaged, victim)
	c.Workers[victim].Kill()
	c.StartWorker("worker-3", 4, nil)

	// One restart for the kill (it restores the damaged checkpoint, whose
	// files have their recorded sizes), one for the failed restore.
	var rs []string
	proc.Eventually(t, 90*time.Second, func() (bool, string) {
		recs := c.restarts(id).Restarts
		rs = rs[:0]
		for _, r := range recs {
			rs = append(rs, timeline(r)+" fallback "+r.Fallback)
			if r.Attempt > 0 && r.Fallback != "" && r.RunningAt != nil {
				return true, ""
			}
		}
		j := c.Job(id)
		if j.State == "FAILED" {
			t.Fatalf("job failed: %s; restarts:\n%s", j.FailureCause, strings.Join(rs, "\n"))
		}
		return false, fmt.Sprintf("job %s attempt %d; no restart with a fallback running yet:\n%s", j.State, j.Attempt, strings.Join(rs, "\n"))
	})
	recs := c.restarts(id).Restarts
	for i, r := range recs {
		t.Logf("restart %d: %s; fallback %q", i+1, timeline(r), r.Fallback)
		// Every attempt but the last failed while restoring.
		upTo := 3
		if i == len(recs)-1 {
			upTo = 5
		}
		if err := checkRestartRecord(r, upTo); err != nil {
			t.Error(err)
		}
	}
	if len(recs) != 2 {
		t.Errorf("%d restarts, want 2 (the kill, the failed restore)", len(recs))
	}
	if !causedByLoss(recs[0].Cause, victim) {
		t.Errorf("restart 1: cause %q, want the killed worker %s", recs[0].Cause, victim)
	}
	// A subtask is RUNNING only once it has read its state, so the attempt
	// that failed to restore never reached "restored".
	if recs[0].RestoredAt != nil {
		t.Errorf("restart 1 has restored_at %s although a subtask of attempt 2 failed to restore its state", recs[0].RestoredAt)
	}
	if recs[0].RestoredFrom != latest.ID {
		t.Errorf("the kill's restart restored %d, want the damaged checkpoint %d (its files have their sizes)", recs[0].RestoredFrom, latest.ID)
	}
	last := recs[len(recs)-1]
	if last.RestoredFrom >= latest.ID || last.RestoredFrom < prev.ID {
		t.Errorf("the restart after the failed restore restored %d, want the previous retained checkpoint (%d..%d)", last.RestoredFrom, prev.ID, latest.ID-1)
	}
	if !strings.Contains(last.Fallback, fmt.Sprintf("checkpoint %d", latest.ID)) || !strings.Contains(last.Fallback, filepath.Base(damaged)) {
		t.Errorf("fallback %q: want it to name checkpoint %d and the damaged file %s", last.Fallback, latest.ID, filepath.Base(damaged))
	}
	cs := c.Checkpoints(id)
	if cs.LatestRestore == nil || cs.LatestRestore.CheckpointID != last.RestoredFrom {
		t.Errorf("latest_restore %+v, want checkpoint %d", cs.LatestRestore, last.RestoredFrom)
	}

	lg.wait(3 * time.Minute)
	r := c.verifyCaughtUp(events, seed, 3*time.Minute, "--allow-duplicates")
	t.Logf("verify --allow-duplicates: %d windows matched, %d duplicated (at-least-once sink), %d pending", r.Matched, r.Duplicated, r.Pending)
	checkOutput(t, r, true)
}

// damageLargestStateFile flips bytes in the middle of the largest state
// file under dir, keeping its size, and returns its path.
func damageLargestStateFile(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var path string
	var size int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "_metadata") || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > size {
			path, size = filepath.Join(dir, e.Name()), info.Size()
		}
	}
	if path == "" {
		t.Fatalf("no state file with data in %s", dir)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 2; i < len(data)/2+8 && i < len(data); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
