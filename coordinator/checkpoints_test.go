package coordinator_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

func newFakeCluster(t *testing.T, workers int, mutate ...func(*coordinator.Config)) (*fakeCluster, *coordinator.Coordinator, *api.Client, *clock.Manual) {
	t.Helper()
	root := t.TempDir()
	clk := clock.NewManual(t0)
	// Workers are lost only when their session breaks: the manual clock
	// jumps far ahead of any heartbeat.
	c := startCoordinator(t, clk, func(cfg *coordinator.Config) {
		cfg.HeartbeatTimeout = 1000 * time.Hour
		cfg.CheckpointStorage = "file://" + root
		cfg.Rand = func() float64 { return 0.5 }
		for _, m := range mutate {
			m(cfg)
		}
	})
	st, err := checkpoint.OpenStorage("file://" + root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fc := &fakeCluster{t: t, clk: clk, st: st, root: root}
	for i := range workers {
		fc.workers = append(fc.workers, startFakeWorker(t, c.GRPCAddr(), string(rune('a'+i))+"w", 2))
	}
	cl := api.NewClient("http://" + c.HTTPAddr())
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(context.Background()); return len(ws) == workers }, "workers to register")
	return fc, c, cl, clk
}

func checkpoints(t *testing.T, cl *api.Client, id string) *api.Checkpoints {
	t.Helper()
	cs, err := cl.Checkpoints(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func waitCheckpoint(t *testing.T, cl *api.Client, job string, id int64, status string) *api.CheckpointDetail {
	t.Helper()
	var d *api.CheckpointDetail
	eventually(t, 10*time.Second, func() bool {
		var err error
		d, err = cl.Checkpoint(context.Background(), job, id)
		return err == nil && d.Status == status
	}, "checkpoint %d of %s to be %s (last %+v)", id, job, status, &d)
	return d
}

// advanceUntil moves the manual clock by step until cond holds: the
// coordinator's ticker runs on that clock, one tick per advance.
func advanceUntil(t *testing.T, clk *clock.Manual, step time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		clk.Advance(step)
		time.Sleep(2 * time.Millisecond) // let the ticker goroutine run; the condition is polled, not timed
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestCheckpointing(t *testing.T) {
	fc, _, cl, clk := newFakeCluster(t, 3)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("cp", "checkpoint: {interval: 10s, timeout: 30s, retained: 2, tolerable_failures: 5}\nrestart: {strategy: none}\n", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	for _, d := range fc.deploys(id) {
		if d.GetCheckpointDir() != "file://"+fc.root+"/"+id || d.GetRestore() != nil {
			t.Fatalf("deploy %v", d)
		}
	}

	t.Run("trigger at the sources on the clock, complete when all acked", func(t *testing.T) {
		clk.Advance(9 * time.Second)
		if n := len(fc.triggers(id)); n != 0 {
			t.Fatalf("%d triggers before the interval", n)
		}
		advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[1] == 2 }, "checkpoint 1 at both sources")
		// Only the sources (n0[0], n0[1]) got it; n1 did not.
		cs := checkpoints(t, cl, id)
		if cs.Counts.InProgress != 1 || cs.History[0].ID != 1 || cs.History[0].Status != "IN_PROGRESS" || !cs.Config.Enabled || cs.Config.Retained != 2 {
			t.Fatalf("%+v", cs)
		}
		fc.ackAll(id, 1, false)
		d := waitCheckpoint(t, cl, id, 1, "COMPLETED")
		if d.Acknowledged != 3 || d.SizeBytes == 0 || len(d.SubtaskStats) != 3 || d.MaxAlignmentMs != 4 || d.SlowestSubtask == "" ||
			!strings.HasSuffix(d.Location, id+"/chk-1") {
			t.Fatalf("%+v", d)
		}
		if !exists(filepath.Join(fc.root, id, "chk-1", "_metadata")) {
			t.Fatal("no _metadata")
		}
		md, err := checkpoint.ReadMetadata(ctx, fc.st, checkpoint.CheckpointDir(id, 1))
		if err != nil || md.GetJobId() != id || len(md.GetSubtasks()) != 3 || !strings.Contains(string(md.GetJobSpec()), "name: cp") || md.GetMaxParallelism() != 128 {
			t.Fatalf("metadata %v %v", md, err)
		}
		eventually(t, 5*time.Second, func() bool { return fc.count(id, 1, "notify") == 3 }, "notify to all three subtasks")
	})

	t.Run("retained", func(t *testing.T) {
		for _, n := range []int64{2, 3} {
			advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[n] == 2 }, "next trigger")
			fc.ackAll(id, n, false)
			waitCheckpoint(t, cl, id, n, "COMPLETED")
		}
		// Retention runs after the commit, off the coordinator's lock.
		eventually(t, 5*time.Second, func() bool {
			return !exists(filepath.Join(fc.root, id, "chk-1")) && exists(filepath.Join(fc.root, id, "chk-2", "_metadata"))
		}, "retention to keep checkpoints 2 and 3 only")
	})

	t.Run("decline aborts and deletes the files", func(t *testing.T) {
		advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[4] == 2 }, "checkpoint 4")
		fc.workers[0].ack(fc.st, id, 4, false) // some state is written...
		if !exists(filepath.Join(fc.root, id, "chk-4")) {
			t.Fatal("no state written")
		}
		fc.workers[1].decline(id, 4, "disk full") // ...then a subtask declines
		d := waitCheckpoint(t, cl, id, 4, "FAILED")
		if d.FailureReason != "DECLINED" || !strings.Contains(d.Failure, "disk full") {
			t.Fatalf("%+v", d)
		}
		eventually(t, 5*time.Second, func() bool { return fc.count(id, 4, "abort") == 3 }, "abort to every subtask")
		eventually(t, 5*time.Second, func() bool { return !exists(filepath.Join(fc.root, id, "chk-4")) }, "the aborted checkpoint's files to go")
	})

	t.Run("timeout aborts", func(t *testing.T) {
		advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[5] == 2 }, "checkpoint 5")
		advanceUntil(t, clk, time.Second, func() bool {
			d, err := cl.Checkpoint(ctx, id, 5)
			return err == nil && d.Status == "FAILED"
		}, "checkpoint 5 to time out")
		d, _ := cl.Checkpoint(ctx, id, 5)
		if d.FailureReason != "TIMEOUT" || d.DurationMs < 30000 {
			t.Fatalf("%+v", d)
		}
		cs := checkpoints(t, cl, id)
		if cs.Counts != (api.CheckpointCounts{Triggered: cs.Counts.Triggered, InProgress: cs.Counts.InProgress, Completed: 3, Failed: 2}) {
			t.Fatalf("counts %+v", cs.Counts)
		}
		if j, _ := cl.Job(ctx, id); j.State != "RUNNING" {
			t.Fatalf("job %s after tolerable failures", j.State)
		}
	})

	t.Run("savepoint", func(t *testing.T) {
		// Let the checkpoint in flight (if any) finish first: the
		// savepoint queues behind it.
		sp, err := cl.TriggerSavepoint(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if sp.RequestID == "" || sp.Status != "IN_PROGRESS" {
			t.Fatalf("%+v", sp)
		}
		var spID int64
		acked := map[int64]bool{}
		advanceUntil(t, clk, time.Second, func() bool {
			s, _ := cl.Savepoint(ctx, id, sp.RequestID)
			if s != nil && s.CheckpointID != 0 && fc.triggers(id)[s.CheckpointID] == 2 {
				spID = s.CheckpointID
				return true
			}
			// a periodic checkpoint in flight: complete it (once: it shows
			// IN_PROGRESS until its _metadata is written)
			for n, k := range fc.triggers(id) {
				if k == 2 && !acked[n] {
					if d, err := cl.Checkpoint(ctx, id, n); err == nil && d.Status == "IN_PROGRESS" && !d.Savepoint {
						acked[n] = true
						fc.ackAll(id, n, false)
					}
				}
			}
			return false
		}, "the savepoint to be triggered")
		fc.ackAll(id, spID, true)
		eventually(t, 5*time.Second, func() bool {
			s, _ := cl.Savepoint(ctx, id, sp.RequestID)
			return s != nil && s.Status == "COMPLETED"
		}, "savepoint to complete")
		s, _ := cl.Savepoint(ctx, id, sp.RequestID)
		if !strings.HasSuffix(s.Location, "/savepoints/sp-"+itoa(spID)) || !exists(filepath.Join(fc.root, id, "savepoints", "sp-"+itoa(spID), "_metadata")) {
			t.Fatalf("%+v", s)
		}
		// One name for one savepoint: the request is named as its directory.
		if sp.RequestID != "sp-"+itoa(spID) {
			t.Fatalf("request %s wrote savepoint directory sp-%d", sp.RequestID, spID)
		}
		// Later checkpoints and retention leave the savepoint alone.
		for range 3 {
			var next int64
			advanceUntil(t, clk, time.Second, func() bool {
				for n, k := range fc.triggers(id) {
					if k == 2 && n > spID && n > next {
						if d, err := cl.Checkpoint(ctx, id, n); err == nil && d.Status == "IN_PROGRESS" {
							next = n
							return true
						}
					}
				}
				return false
			}, "a later checkpoint")
			fc.ackAll(id, next, false)
			waitCheckpoint(t, cl, id, next, "COMPLETED")
		}
		if !exists(filepath.Join(fc.root, id, "savepoints", "sp-"+itoa(spID), "_metadata")) {
			t.Fatal("retention deleted the savepoint")
		}

		// The savepoint restores into a new job at another parallelism.
		id2, err := cl.SubmitFromSavepoint(ctx, jobSpecWith("cp2", "restart: {strategy: none}\n", 1, 1), s.Location)
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id2, "RUNNING")
		for _, d := range fc.deploys(id2) {
			if d.GetRestore().GetCheckpointId() != spID || d.GetRestore().GetMetadataUri() != s.Location+"/_metadata" {
				t.Fatalf("deploy %v", d)
			}
		}
		if cs := checkpoints(t, cl, id2); cs.LatestRestore == nil || cs.LatestRestore.CheckpointID != spID || cs.Config.Enabled {
			t.Fatalf("%+v", cs)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

const taskFailed = controlpb.TaskState_TASK_STATE_FAILED

func TestFailover(t *testing.T) {
	fc, _, cl, clk := newFakeCluster(t, 3)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("fo", "checkpoint: {interval: 10s}\nrestart: {strategy: fixed, attempts: 2, delay: 2s}\n", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	for _, n := range []int64{1, 2} {
		advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[n] == 2 }, "trigger")
		fc.ackAll(id, n, false)
		waitCheckpoint(t, cl, id, n, "COMPLETED")
	}
	// Checkpoint 2 loses a state file: the restore falls back to 1.
	files, _ := filepath.Glob(filepath.Join(fc.root, id, "chk-2", "n1-*"))
	if len(files) != 1 {
		t.Fatalf("state files %v", files)
	}
	if err := os.WriteFile(files[0], []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("worker lost: all cancelled, redeployed with attempt 2 from the latest good checkpoint", func(t *testing.T) {
		victim, _ := fc.worker(id, "n1", 0)
		var rest []*fakeWorker
		for _, w := range fc.workers {
			if w != victim {
				rest = append(rest, w)
			}
		}
		victim.kill()
		fc.workers = rest
		j := waitJob(t, cl, id, "RESTARTING")
		if !strings.Contains(j.Message, "restarting in 2s") {
			t.Fatalf("%+v", j)
		}
		// Every surviving subtask was told to cancel.
		for _, w := range fc.workers {
			ds, cs, _, _, _ := w.snapshot()
			if len(ds) > 0 && len(cs) == 0 {
				t.Fatalf("worker %s: no cancel", w.id)
			}
		}
		advanceUntil(t, clk, time.Second, func() bool {
			j, _ := cl.Job(ctx, id)
			return j.State == "RUNNING" && j.Attempt == 2
		}, "attempt 2 to run")
		ds := fc.deploys(id)
		n := 0
		for _, d := range ds {
			if d.GetTask().GetAttempt() == 2 {
				n++
				if d.GetRestore().GetCheckpointId() != 1 || !strings.HasSuffix(d.GetRestore().GetMetadataUri(), id+"/chk-1/_metadata") {
					t.Fatalf("restore %v", d.GetRestore())
				}
			}
		}
		if n != 3 {
			t.Fatalf("%d deployments of attempt 2", n)
		}
		rs, err := cl.Restarts(ctx, id)
		if err != nil || len(rs.Restarts) != 1 {
			t.Fatalf("%+v %v", rs, err)
		}
		r := rs.Restarts[0]
		if r.FailedAttempt != 1 || r.Attempt != 2 || !strings.Contains(r.Cause, "lost") || r.Worker != victim.id || r.RestoredFrom != 1 ||
			!strings.Contains(r.Fallback, "checkpoint 2") || r.DelayMs != 2000 ||
			r.CancelledAt == nil || r.ScheduledAt == nil || r.RestoredAt == nil || r.RunningAt != nil || r.ScheduledAt.Sub(*r.CancelledAt) < 2*time.Second {
			t.Fatalf("restart %+v", r)
		}
		if cs := checkpoints(t, cl, id); cs.LatestRestore == nil || cs.LatestRestore.CheckpointID != 1 || cs.LatestRestore.Attempt != 2 {
			t.Fatalf("latest restore %+v", cs.LatestRestore)
		}
		// Ids go on from 3; the first checkpoint after the restore marks
		// the job running again.
		advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[3] == 2 }, "checkpoint 3")
		fc.ackAll(id, 3, false)
		waitCheckpoint(t, cl, id, 3, "COMPLETED")
		rs, _ = cl.Restarts(ctx, id)
		if rs.Restarts[0].RunningAt == nil {
			t.Fatalf("running not recorded: %+v", rs.Restarts[0])
		}
	})

	t.Run("corrupt state on restore falls back, then restarts are exhausted", func(t *testing.T) {
		w, tid := fc.worker(id, "n0", 0)
		w.status(tid, taskFailed, "node n0: boom")
		advanceUntil(t, clk, time.Second, func() bool {
			j, _ := cl.Job(ctx, id)
			return j.Attempt == 3 && j.State == "RUNNING"
		}, "attempt 3")
		// Attempt 3 restored from 3; a subtask finds its state corrupt.
		for _, d := range fc.deploys(id) {
			if d.GetTask().GetAttempt() == 3 && d.GetRestore().GetCheckpointId() != 3 {
				t.Fatalf("attempt 3 restores %v", d.GetRestore())
			}
		}
		w, tid = fc.worker(id, "n1", 0)
		w.status(tid, taskFailed, "restore: state file n1-0-n1: "+checkpoint.ErrCorrupt.Error()+": crc mismatch")
		j := waitJob(t, cl, id, "FAILED")
		if !strings.Contains(j.FailureCause, "corrupt") || !strings.Contains(j.FailureCause, "not restarted") {
			t.Fatalf("cause %q", j.FailureCause)
		}
		rs, _ := cl.Restarts(ctx, id)
		if len(rs.Restarts) != 3 || !rs.Restarts[2].GaveUp || rs.Restarts[1].RestoredFrom != 3 {
			t.Fatalf("%+v", rs)
		}
	})
}

func TestFailoverCorruptRestoreFallsBack(t *testing.T) {
	fc, _, cl, clk := newFakeCluster(t, 2)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("fb", "checkpoint: {interval: 10s}\nrestart: {strategy: exponential, initial: 1s, max: 4s, jitter: 0}\n", 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	for _, n := range []int64{1, 2} {
		advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[n] == 1 }, "trigger")
		fc.ackAll(id, n, false)
		waitCheckpoint(t, cl, id, n, "COMPLETED")
	}
	w, tid := fc.worker(id, "n1", 0)
	w.status(tid, taskFailed, "boom")
	advanceUntil(t, clk, time.Second, func() bool { j, _ := cl.Job(ctx, id); return j.Attempt == 2 && j.State == "RUNNING" }, "attempt 2")
	// Attempt 2 restores 2 and fails on corrupt state (before RUNNING in a
	// real worker; here a subtask reports it).
	w, tid = fc.worker(id, "n0", 0)
	w.status(tid, taskFailed, "restore: "+checkpoint.ErrCorrupt.Error()+": size mismatch")
	advanceUntil(t, clk, time.Second, func() bool { j, _ := cl.Job(ctx, id); return j.Attempt == 3 && j.State == "RUNNING" }, "attempt 3")
	for _, d := range fc.deploys(id) {
		if d.GetTask().GetAttempt() == 3 && d.GetRestore().GetCheckpointId() != 1 {
			t.Fatalf("attempt 3 restores %v", d.GetRestore())
		}
	}
	rs, _ := cl.Restarts(ctx, id)
	if len(rs.Restarts) != 2 || rs.Restarts[1].RestoredFrom != 1 || !strings.Contains(rs.Restarts[1].Fallback, "checkpoint 2: subtask n0[0] failed to restore") {
		t.Fatalf("%+v", rs.Restarts)
	}
}

func TestStopWithSavepoint(t *testing.T) {
	fc, _, cl, _ := newFakeCluster(t, 2)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpec("stop", 2, 1)) // no checkpoint block: savepoints still work
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	sp, err := cl.TriggerSavepoint(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return fc.triggers(id)[1] == 2 }, "stop savepoint at both sources")
	for _, w := range fc.workers {
		_, _, ts, _, _ := w.snapshot()
		for _, tr := range ts {
			if !tr.GetSavepoint() || !tr.GetStop() {
				t.Fatalf("trigger %v", tr)
			}
		}
	}
	if _, err := cl.TriggerSavepoint(ctx, id, false); err == nil || !strings.Contains(err.Error(), "stopping") {
		t.Fatalf("second savepoint while stopping: %v", err)
	}
	fc.ackAll(id, 1, true)
	eventually(t, 5*time.Second, func() bool { s, _ := cl.Savepoint(ctx, id, sp.RequestID); return s != nil && s.Status == "COMPLETED" }, "savepoint")
	// The sources end after the barrier; the rest follow.
	for _, w := range fc.workers {
		for _, tid := range w.jobTasks(id) {
			w.status(tid, controlpb.TaskState_TASK_STATE_FINISHED, "")
		}
	}
	waitJob(t, cl, id, "FINISHED")
}

func TestCheckpointFailuresFailTheJob(t *testing.T) {
	fc, c, cl, clk := newFakeCluster(t, 2)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("tol", "checkpoint: {interval: 10s, tolerable_failures: 1}\nrestart: {strategy: fixed, attempts: 1, delay: 0s}\n", 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	for _, n := range []int64{1, 2} {
		advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[n] == 1 }, "trigger")
		fc.workers[0].decline(id, n, "no space")
		waitCheckpoint(t, cl, id, n, "FAILED")
	}
	advanceUntil(t, clk, time.Second, func() bool { j, _ := cl.Job(ctx, id); return j.Attempt == 2 && j.State == "RUNNING" }, "restart")
	rs, _ := cl.Restarts(ctx, id)
	if len(rs.Restarts) != 1 || !strings.Contains(rs.Restarts[0].Cause, "2 consecutive checkpoint failures") || rs.Restarts[0].RestoredFrom != 0 {
		t.Fatalf("%+v", rs.Restarts)
	}
	// The running job still says why it restarted.
	if j, _ := cl.Job(ctx, id); j.LastFailure == nil || j.LastFailure.Cause != rs.Restarts[0].Cause || j.LastFailure.FailedAttempt != 1 || j.FailureCause != "" {
		t.Fatalf("job after the restart: failure_cause %q, last_failure %+v", j.FailureCause, j.LastFailure)
	}
	// Ids are not reused after the restart.
	advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[3] == 1 }, "checkpoint 3 in attempt 2")
	resp, data := do(t, "GET", "http://"+c.HTTPAddr()+"/metrics", "")
	for _, want := range []string{`weir_job_restarts_total{job="` + id + `"} 1`, `weir_job_checkpoints_total{job="` + id + `",status="failed"} 2`,
		`weir_job_checkpoints_in_progress{job="` + id + `"} 1`} {
		if resp.StatusCode != 200 || !strings.Contains(string(data), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// Once every source subtask reports the end of its input, the coordinator
// triggers a checkpoint at once (the interval here is an hour). Acknowledged
// by every subtask at the end of its input, it is the final checkpoint: its
// notification says so. A source that still reports the end of its input
// afterwards missed that notification and gets it again.
func TestEndOfInputFinalCheckpoint(t *testing.T) {
	fc, _, cl, _ := newFakeCluster(t, 2)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("eoi", "checkpoint: {interval: 1h}\n", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	endOfInput := func(sub int) {
		w, tid := fc.worker(id, "n0", sub)
		w.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_TaskStatus{TaskStatus: &controlpb.TaskStatus{
			Task: tid, State: controlpb.TaskState_TASK_STATE_RUNNING, EndOfInput: true}}})
	}
	endOfInput(0)
	time.Sleep(50 * time.Millisecond) // a negative check: one source is not enough
	if n := len(fc.triggers(id)); n != 0 {
		t.Fatalf("%d triggers after one of two sources ended", n)
	}
	endOfInput(1)
	eventually(t, 10*time.Second, func() bool { return fc.triggers(id)[1] == 2 }, "checkpoint 1 at both sources, before the interval")
	for _, w := range fc.workers {
		w.ackAt(fc.st, id, 1, false, true)
	}
	if d := waitCheckpoint(t, cl, id, 1, "COMPLETED"); !d.Final {
		t.Fatalf("checkpoint 1 is not reported final: %+v", d.CheckpointStats)
	}
	finals := func() int {
		n := 0
		for _, w := range fc.workers {
			_, _, _, ns, _ := w.snapshot()
			for _, m := range ns {
				if m.GetTask().GetJobId() == id && m.GetCheckpointId() == 1 && m.GetFinal() {
					n++
				}
			}
		}
		return n
	}
	eventually(t, 5*time.Second, func() bool { return finals() == 3 }, "a final notification to all three subtasks")
	endOfInput(0)
	eventually(t, 5*time.Second, func() bool { return finals() == 4 }, "the final notification again, to the source still waiting")
}
