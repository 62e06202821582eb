package coordinator_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
)

// TestHistorySurvivesCoordinatorRestart: a job takes checkpoints, loses a
// worker and restarts; a second coordinator on the same storage (taking
// the job over from the job store) shows the same checkpoint history,
// per-subtask detail, counts and restart timeline, read back from
// <root>/<job>/history/.
func TestHistorySurvivesCoordinatorRestart(t *testing.T) {
	fc, c1, cl, clk := newFakeCluster(t, 3)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("hist", "checkpoint: {interval: 10s, tolerable_failures: 5}\nrestart: {strategy: fixed, attempts: 2, delay: 2s}\n", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	for _, n := range []int64{1, 2} {
		advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[n] == 2 }, "trigger")
		fc.ackAll(id, n, false)
		waitCheckpoint(t, cl, id, n, "COMPLETED")
	}
	victim, _ := fc.worker(id, "n1", 0)
	var rest []*fakeWorker
	for _, w := range fc.workers {
		if w != victim {
			rest = append(rest, w)
		}
	}
	victim.kill()
	fc.workers = rest
	advanceUntil(t, clk, time.Second, func() bool {
		j, _ := cl.Job(ctx, id)
		return j.State == "RUNNING" && j.Attempt == 2
	}, "attempt 2 to run")
	// The first checkpoint after the restore completes the restart's
	// timeline (running).
	var n3 int64
	advanceUntil(t, clk, time.Second, func() bool {
		for n, k := range fc.triggers(id) {
			if n > 2 && k == 2 {
				n3 = n
				return true
			}
		}
		return false
	}, "a checkpoint of attempt 2")
	fc.ackAll(id, n3, false)
	waitCheckpoint(t, cl, id, n3, "COMPLETED")
	// A declined checkpoint: FAILED, and its directory deleted.
	var n4 int64
	advanceUntil(t, clk, time.Second, func() bool {
		for n, k := range fc.triggers(id) {
			if n > n3 && k == 2 {
				n4 = n
				return true
			}
		}
		return false
	}, "a checkpoint after "+itoa(n3))
	src, _ := fc.worker(id, "n0", 0)
	src.decline(id, n4, "no room")
	waitCheckpoint(t, cl, id, n4, "FAILED")
	var before *api.Restarts
	eventually(t, 10*time.Second, func() bool {
		before, err = cl.Restarts(ctx, id)
		return err == nil && len(before.Restarts) == 1 && before.Restarts[0].RunningAt != nil
	}, "the restart's running step")
	cpsBefore := checkpoints(t, cl, id)
	detailBefore, err := cl.Checkpoint(ctx, id, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"chk-1.json", "chk-2.json", "chk-" + itoa(n3) + ".json"} {
		eventually(t, 5*time.Second, func() bool { return exists(filepath.Join(fc.root, id, "history", f)) }, "history file %s", f)
	}
	// The history is written off the coordinator's lock: wait for the
	// newest step and for the older ones to go.
	eventually(t, 5*time.Second, func() bool {
		m5, _ := filepath.Glob(filepath.Join(fc.root, id, "history", "restart-*-5.json"))
		older, _ := filepath.Glob(filepath.Join(fc.root, id, "history", "restart-*-[1-4].json"))
		return len(m5) == 1 && len(older) == 0
	}, "one restart file at step 5 and no older step")

	// A new coordinator on the same storage.
	c1.Stop()
	c2 := startCoordinator(t, clock.NewManual(t0.Add(time.Hour)), func(cfg *coordinator.Config) {
		cfg.HeartbeatTimeout = 1000 * time.Hour
		cfg.CheckpointStorage = "file://" + fc.root
	})
	cl2 := api.NewClient("http://" + c2.HTTPAddr())
	j, err := cl2.Job(ctx, id)
	if err != nil {
		t.Fatalf("the job was not taken over: %v", err)
	}
	if j.Restarts != 1 {
		rs, _ := cl2.Restarts(ctx, id)
		t.Fatalf("job shows %d restarts: %+v", j.Restarts, rs)
	}
	after, err := cl2.Restarts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Restarts) != 1 || !sameRestart(before.Restarts[0], after.Restarts[0]) {
		t.Fatalf("restarts before %+v\nafter %+v", before.Restarts, after.Restarts)
	}
	cpsAfter := checkpoints(t, cl2, id)
	if cpsAfter.Counts.Completed != cpsBefore.Counts.Completed || cpsAfter.Counts.Failed != cpsBefore.Counts.Failed {
		t.Fatalf("counts before %+v after %+v", cpsBefore.Counts, cpsAfter.Counts)
	}
	want := map[int64]string{}
	for _, h := range cpsBefore.History {
		if h.Status != "IN_PROGRESS" {
			want[h.ID] = h.Status
		}
	}
	got := map[int64]string{}
	for _, h := range cpsAfter.History {
		got[h.ID] = h.Status
	}
	for id, st := range want {
		if got[id] != st {
			t.Fatalf("checkpoint %d: %q after the restart, %q before\n%+v", id, got[id], st, cpsAfter.History)
		}
	}
	if cpsAfter.Latest == nil || cpsAfter.Latest.ID != n3 {
		t.Fatalf("latest %+v", cpsAfter.Latest)
	}
	if d, err := cl2.Checkpoint(ctx, id, n4); err != nil || d.FailureReason != "DECLINED" {
		t.Fatalf("failed checkpoint %d after the restart: %+v %v", n4, d, err)
	}
	detailAfter, err := cl2.Checkpoint(ctx, id, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(detailBefore.SubtaskStats, detailAfter.SubtaskStats) || detailBefore.DurationMs != detailAfter.DurationMs {
		t.Fatalf("detail before %+v\nafter %+v", detailBefore, detailAfter)
	}
}

func sameRestart(a, b api.Restart) bool {
	eq := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.Cause == b.Cause && a.FailedAttempt == b.FailedAttempt && a.Attempt == b.Attempt && a.RestoredFrom == b.RestoredFrom &&
		a.DetectedAt.Equal(b.DetectedAt) && eq(a.CancelledAt, b.CancelledAt) && eq(a.ScheduledAt, b.ScheduledAt) &&
		eq(a.RestoredAt, b.RestoredAt) && eq(a.RunningAt, b.RunningAt)
}

// TestCheckpointIDsNotReusedAfterTakeOver: a coordinator that takes a job
// over continues its checkpoint ids after every id the history recorded,
// also after a failed checkpoint whose directory was deleted.
func TestCheckpointIDsNotReusedAfterTakeOver(t *testing.T) {
	fc, c1, cl, clk := newFakeCluster(t, 2)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("ids", "checkpoint: {interval: 10s, tolerable_failures: 5}\n", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[1] == 2 }, "trigger 1")
	fc.ackAll(id, 1, false)
	waitCheckpoint(t, cl, id, 1, "COMPLETED")
	advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[2] == 2 }, "trigger 2")
	src, _ := fc.worker(id, "n0", 0)
	src.decline(id, 2, "no room")
	waitCheckpoint(t, cl, id, 2, "FAILED")
	eventually(t, 5*time.Second, func() bool { return !exists(filepath.Join(fc.root, id, "chk-2")) }, "the failed checkpoint's directory to go")
	c1.Stop()

	clk2 := clock.NewManual(t0.Add(time.Hour))
	c2 := startCoordinator(t, clk2, func(cfg *coordinator.Config) {
		cfg.HeartbeatTimeout = 1000 * time.Hour
		cfg.CheckpointStorage = "file://" + fc.root
		cfg.AdoptWindow = -1 // the fake workers report no subtasks
	})
	fc2 := &fakeCluster{t: t, clk: clk2, st: fc.st, root: fc.root}
	for _, w := range []string{"xw", "yw"} {
		fc2.workers = append(fc2.workers, startFakeWorker(t, c2.GRPCAddr(), w, 2))
	}
	cl2 := api.NewClient("http://" + c2.HTTPAddr())
	waitJob(t, cl2, id, "RUNNING")
	var next int64
	advanceUntil(t, clk2, time.Second, func() bool {
		for n := range fc2.triggers(id) {
			next = n
			return true
		}
		return false
	}, "a checkpoint of the new coordinator")
	if next <= 2 {
		t.Fatalf("the new coordinator reused checkpoint id %d", next)
	}
}

// A checkpoint in flight when the coordinator stops is aborted by the stop
// (its sessions close) but keeps its files, as after a crash: the
// coordinator that takes the job over continues after its id. Deleting
// them left no trace of the id, the new coordinator triggered it again,
// and the sources, which had injected that barrier, declined it.
func TestCheckpointInFlightAtStopKeepsItsID(t *testing.T) {
	fc, c1, cl, clk := newFakeCluster(t, 2)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("stopids", "checkpoint: {interval: 10s}\n", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[1] == 2 }, "trigger 1")
	fc.ackAll(id, 1, false)
	waitCheckpoint(t, cl, id, 1, "COMPLETED")
	advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[2] == 2 }, "trigger 2")
	src, _ := fc.worker(id, "n0", 0)
	src.ack(fc.st, id, 2, false) // state of checkpoint 2 written, the checkpoint not complete
	c1.Stop()
	if !exists(filepath.Join(fc.root, id, "chk-2")) {
		t.Fatal("the checkpoint in flight at the stop lost its files")
	}

	clk2 := clock.NewManual(t0.Add(time.Hour))
	c2 := startCoordinator(t, clk2, func(cfg *coordinator.Config) {
		cfg.HeartbeatTimeout = 1000 * time.Hour
		cfg.CheckpointStorage = "file://" + fc.root
		cfg.AdoptWindow = -1
	})
	fc2 := &fakeCluster{t: t, clk: clk2, st: fc.st, root: fc.root}
	for _, w := range []string{"xw", "yw"} {
		fc2.workers = append(fc2.workers, startFakeWorker(t, c2.GRPCAddr(), w, 2))
	}
	cl2 := api.NewClient("http://" + c2.HTTPAddr())
	waitJob(t, cl2, id, "RUNNING")
	var next int64
	advanceUntil(t, clk2, time.Second, func() bool {
		for n := range fc2.triggers(id) {
			next = n
			return true
		}
		return false
	}, "a checkpoint of the new coordinator")
	if next <= 2 {
		t.Fatalf("the new coordinator reused checkpoint id %d", next)
	}
	// Its first completed checkpoint's retention removes the leftover.
	fc2.ackAll(id, next, false)
	waitCheckpoint(t, cl2, id, next, "COMPLETED")
	eventually(t, 5*time.Second, func() bool { return !exists(filepath.Join(fc.root, id, "chk-2")) }, "retention to delete the aborted checkpoint's files")
}
