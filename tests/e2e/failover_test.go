package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// TestIPVisitsSurvivesWorkerKills streams killEvents events (WEIR_E2E_EVENTS
// overrides) at killRate per second and kills a worker kills times. A run
// took 23s on a busy 2-core machine with the test under -race.
const (
	killEvents = 1_000_000
	killRate   = 50_000
	kills      = 4
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

// TestIPVisitsSurvivesWorkerKills runs ip-visits at parallelism 4 with a
// checkpoint every second and an at-least-once Kafka sink on three workers,
// and SIGKILLs a worker running its subtasks several times while a million
// events stream in, each time after a checkpoint of the current attempt has
// completed, starting a replacement worker after each kill. Every restart
// must be recorded with its cause and a complete timeline, and the output
// must have no lost, wrong or unexpected window: the restores lost no
// state and replayed no input into a window twice. Windows emitted again
// after a restore (the at-least-once sink) are counted and logged.
func TestIPVisitsSurvivesWorkerKills(t *testing.T) {
	survivesWorkerKills(t, false)
}

// TestIPVisitsExactlyOnceSurvivesWorkerKills is the same with the sink's
// delivery: exactly-once: read_committed output must have every window
// exactly once, no duplicates either.
func TestIPVisitsExactlyOnceSurvivesWorkerKills(t *testing.T) {
	survivesWorkerKills(t, true)
}

func survivesWorkerKills(t *testing.T, exactlyOnce bool) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	events, seed := envInt(t, "WEIR_E2E_EVENTS", killEvents), 11
	began := time.Now()
	c := startCluster(t, 3, 4)
	var spec string
	if exactlyOnce {
		// transaction_timeout must exceed interval + checkpoint timeout +
		// the restart budget (docs/exactly-once.md).
		spec = c.ipVisitsSpec("checkpoint: {interval: 1s, timeout: 30s}\nrestart: {strategy: fixed, attempts: 10, delay: 500ms}\n",
			"delivery: exactly-once", "transaction_timeout: 2m")
	} else {
		spec = c.ipVisitsSpec("checkpoint: {interval: 1s}\nrestart: {strategy: fixed, attempts: 10, delay: 500ms}\n")
	}
	id := c.Submit(spec, "-p", "4")
	c.WaitRunning(id, 1, 60*time.Second)

	lg := c.startLoadgen(events, seed, killRate)
	nextWorker := 4
	var killed []string
	var restorable []int64 // per kill: the checkpoint completed before it
	for k := 1; k <= kills; k++ {
		// Spread the kills over the load: kill k no earlier than k/(kills+1)
		// of the way through, and only once the current attempt has
		// completed a checkpoint (so there is state to restore).
		at := lg.started.Add(lg.expectedSpan * time.Duration(k) / time.Duration(kills+1))
		j := c.Job(id)
		chk := c.WaitCheckpoint(id, j.Attempt, 0, 90*time.Second)
		proc.Eventually(t, time.Until(at)+time.Second, func() (bool, string) {
			return !time.Now().Before(at), "kill time"
		})
		victims := c.workersOf(id)
		if len(victims) == 0 {
			t.Fatalf("job %s has no subtask on a worker", id)
		}
		victim := victims[0]
		t.Logf("kill %d at +%s: SIGKILL %s in attempt %d (checkpoint %d completed; %d source records read)",
			k, time.Since(lg.started).Round(time.Millisecond), victim, j.Attempt, chk.ID, c.sourceRecordsIn(id))
		c.Workers[victim].Kill()
		killed = append(killed, victim)
		restorable = append(restorable, chk.ID)
		c.StartWorker(fmt.Sprintf("worker-%d", nextWorker), 4, nil)
		nextWorker++
		c.WaitRunning(id, j.Attempt+1, 90*time.Second)
	}
	// The last restore is complete once a checkpoint of its attempt is.
	c.WaitCheckpoint(id, c.Job(id).Attempt, 0, 90*time.Second)

	took := lg.wait(3 * time.Minute)
	t.Logf("loadgen wrote %d events in %s", events, took.Round(time.Millisecond))
	var flags []string
	if !exactlyOnce {
		flags = append(flags, "--allow-duplicates")
	}
	r := c.verifyCaughtUp(events, seed, 3*time.Minute, flags...)
	t.Logf("verify %v: %d windows matched, %d duplicated, %d pending; caught up %s after loadgen ended",
		flags, r.Matched, r.Duplicated, r.Pending, (time.Since(lg.started) - took).Round(time.Millisecond))
	checkOutput(t, r, !exactlyOnce)

	rs := c.restarts(id)
	if len(rs.Restarts) != kills {
		t.Fatalf("%d restarts recorded, want %d: %+v", len(rs.Restarts), kills, rs.Restarts)
	}
	for i, r := range rs.Restarts {
		t.Logf("restart %d: %s", i+1, timeline(r))
		if err := checkRestartRecord(r, 5); err != nil {
			t.Error(err)
		}
		if r.RestoredFrom < restorable[i] {
			t.Errorf("restart %d restored checkpoint %d, older than %d which had completed before the kill", i+1, r.RestoredFrom, restorable[i])
		}
		if !causedByLoss(r.Cause, killed[i]) {
			t.Errorf("restart %d: cause %q (worker %q), want the killed worker %s", i+1, r.Cause, r.Worker, killed[i])
		}
	}
	// Checkpoint ids only grow, across attempts too, and every attempt's
	// first checkpoint is newer than the one it restored.
	cs := c.Checkpoints(id)
	firstOf := map[int64]int64{}
	for i, h := range cs.History {
		if i > 0 && h.ID >= cs.History[i-1].ID {
			t.Errorf("checkpoint history not strictly decreasing: %d after %d", h.ID, cs.History[i-1].ID)
		}
		firstOf[h.Attempt] = h.ID
	}
	for i, r := range rs.Restarts {
		if first, ok := firstOf[r.Attempt]; ok && first <= r.RestoredFrom {
			t.Errorf("restart %d: attempt %d took checkpoint %d, not newer than %d it restored", i+1, r.Attempt, first, r.RestoredFrom)
		}
	}
	if got := c.metric(fmt.Sprintf("weir_job_restarts_total{job=%q}", id)); got != strconv.Itoa(kills) {
		t.Errorf("weir_job_restarts_total = %q, want %d", got, kills)
	}
	if j := c.Job(id); j.State != "RUNNING" || j.Restarts != kills || j.Attempt != kills+1 {
		t.Errorf("job after %d kills: %s, attempt %d, %d restarts", kills, j.State, j.Attempt, j.Restarts)
	}
	t.Logf("%d events, %d kills, whole test %s", events, kills, time.Since(began).Round(time.Millisecond))
}
