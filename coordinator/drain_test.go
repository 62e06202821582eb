package coordinator_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

func (fw *fakeWorker) drain() {
	fw.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Drain{Drain: &controlpb.DrainRequest{Reason: "SIGTERM"}}})
}

func workerState(t *testing.T, cl *api.Client, id string) api.Worker {
	t.Helper()
	ws, err := cl.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.ID == id {
			return w
		}
	}
	return api.Worker{}
}

// stopTriggers returns the stop checkpoints (not savepoints) triggered at
// the job's sources: per id, how many source subtasks got it.
func (fc *fakeCluster) stopTriggers(job string) map[int64]int {
	out := map[int64]int{}
	for _, w := range fc.workers {
		_, _, ts, _, _ := w.snapshot()
		for _, tr := range ts {
			if tr.GetTask().GetJobId() == job && tr.GetStop() && !tr.GetSavepoint() {
				out[tr.GetCheckpointId()]++
			}
		}
	}
	return out
}

// TestDrainMovesJobsFromAStopCheckpoint: a worker that asks to drain gets
// no new subtasks; its job stops at a checkpoint (a stop checkpoint that
// fails is tried again) and, once every subtask finished, restarts at
// once on the other workers from that checkpoint, with restart reason
// "drain" — although the job's strategy is "none", so a failure would
// have ended it.
func TestDrainMovesJobsFromAStopCheckpoint(t *testing.T) {
	fc, _, cl, clk := newFakeCluster(t, 3)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("drained", "checkpoint: {interval: 1h}\nrestart: {strategy: none}\n", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	victim, _ := fc.worker(id, "n0", 0)
	victim.drain()
	eventually(t, 5*time.Second, func() bool { return workerState(t, cl, victim.id).State == "DRAINING" }, "worker DRAINING")
	if d := workerState(t, cl, victim.id).Drain; d == nil || d.Reason != "SIGTERM" {
		t.Fatalf("drain info %+v", d)
	}

	advanceUntil(t, clk, 100*time.Millisecond, func() bool { return fc.stopTriggers(id)[1] == 2 }, "stop checkpoint 1 at both sources")
	victim.decline(id, 1, "disk full")
	waitCheckpoint(t, cl, id, 1, "FAILED")
	// Tried again, after drainRetry.
	advanceUntil(t, clk, 200*time.Millisecond, func() bool { return fc.stopTriggers(id)[2] == 2 }, "stop checkpoint 2")
	if j, _ := cl.Job(ctx, id); j.State != "RUNNING" || j.Attempt != 1 {
		t.Fatalf("job while draining: %s attempt %d", j.State, j.Attempt)
	}
	fc.ackAll(id, 2, false)
	waitCheckpoint(t, cl, id, 2, "COMPLETED")
	// The sources end after the stop barrier, the rest follow.
	for _, w := range fc.workers {
		for _, tid := range w.jobTasks(id) {
			w.status(tid, controlpb.TaskState_TASK_STATE_FINISHED, "")
		}
	}
	advanceUntil(t, clk, 10*time.Millisecond, func() bool { j, _ := cl.Job(ctx, id); return j.Attempt == 2 && j.State == "RUNNING" }, "attempt 2 running")
	for _, d := range fc.deploys(id) {
		if d.GetTask().GetAttempt() != 2 {
			continue
		}
		if d.GetRestore().GetCheckpointId() != 2 {
			t.Fatalf("attempt 2 restores %v, want the stop checkpoint 2", d.GetRestore())
		}
		for _, p := range d.GetPlacements() {
			if p.GetWorkerId() == victim.id {
				t.Fatalf("attempt 2 placed %s[%d] on the draining worker", p.GetVertexId(), p.GetSubtask())
			}
		}
	}
	rs, err := cl.Restarts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Restarts) != 1 || rs.Restarts[0].Reason != "drain" || rs.Restarts[0].RestoredFrom != 2 || rs.Restarts[0].Worker != victim.id ||
		!strings.Contains(rs.Restarts[0].Cause, "draining") || rs.Restarts[0].GaveUp {
		t.Fatalf("restarts %+v", rs.Restarts)
	}
	if j, _ := cl.Job(ctx, id); j.LastFailure != nil || j.Restarts != 1 {
		t.Fatalf("after a drain the job shows last failure %+v, %d restarts", j.LastFailure, j.Restarts)
	}
	if w := workerState(t, cl, victim.id); w.SlotsUsed != 0 || w.Drain == nil || w.Drain.Waiting != "" {
		t.Fatalf("drained worker %+v", w)
	}
}

// TestDrainWaitsForRoom: when the other workers cannot take the whole job,
// it keeps running on the draining worker, which says why; a worker that
// joins makes room and the drain goes on.
func TestDrainWaitsForRoom(t *testing.T) {
	fc, c, cl, clk := newFakeCluster(t, 2)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("big", "checkpoint: {interval: 1h}\n", 3))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	victim, _ := fc.worker(id, "n0", 0)
	w, err := cl.DrainWorker(ctx, victim.id)
	if err != nil {
		t.Fatal(err)
	}
	if w.State != "DRAINING" || w.Drain == nil || !strings.Contains(w.Drain.Waiting, "keeps running here") {
		t.Fatalf("drain answer %+v %+v", w, w.Drain)
	}
	clk.Advance(time.Second)
	if w := workerState(t, cl, victim.id); w.Drain == nil || !strings.Contains(w.Drain.Waiting, "job "+id) || !strings.Contains(w.Drain.Waiting, "slots on other workers") {
		t.Fatalf("waiting worker %+v", w.Drain)
	}
	if n := len(fc.stopTriggers(id)); n != 0 {
		t.Fatalf("a stop checkpoint was triggered without room elsewhere")
	}
	fc.workers = append(fc.workers, startFakeWorker(t, c.GRPCAddr(), "zw", 2))
	advanceUntil(t, clk, 100*time.Millisecond, func() bool { return len(fc.stopTriggers(id)) == 1 }, "stop checkpoint once a worker joined")

	// An unknown worker is a 404 that names it.
	_, err = cl.DrainWorker(ctx, "nope")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !strings.Contains(ae.Message, `"nope"`) {
		t.Fatalf("drain of an unknown worker: %v", err)
	}
}

// TestWorkerDrained: a real worker that asks to drain, or that an operator
// drains over the REST API, gets nothing more placed on it, and its
// Drained closes once it holds no subtask: at once when it had none, when
// its job's subtasks ended otherwise.
func TestWorkerDrained(t *testing.T) {
	c := startCoordinator(t, clock.Real{})
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()
	r := newFakeRunner()
	idle := startWorker(t, c.GRPCAddr(), "idle", 2, r)
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 1 }, "idle worker")
	id, err := cl.Submit(ctx, jobSpec("held", 2))
	if err != nil {
		t.Fatal(err)
	}
	waitTasks(t, r, id, 2)
	busy := startWorker(t, c.GRPCAddr(), "busy", 2, r)
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 2 }, "busy worker")

	// The job is on "idle"; "busy" joined empty. Drain "busy" from the
	// worker side: nothing to move, it is drained at once.
	busy.Drain("test")
	select {
	case <-busy.Drained():
	case <-time.After(10 * time.Second):
		t.Fatal("an empty worker was not drained")
	}
	if w := workerState(t, cl, "busy"); w.State != "DRAINING" || w.Drain.Reason != "test" {
		t.Fatalf("busy: %+v", w)
	}

	// "idle" holds the job: an operator drains it; the worker learns it
	// over its session and waits for its subtasks.
	if _, err := cl.DrainWorker(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, idle.Draining, "the worker to learn of the drain")
	select {
	case <-idle.Drained():
		t.Fatal("drained while its subtasks run")
	default:
	}
	// Nothing is placed on draining workers.
	other, err := cl.Submit(ctx, jobSpec("waits", 1))
	if err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, cl, other, "SCHEDULING"); !strings.Contains(j.Message, "waiting for slots") {
		t.Fatalf("job on a cluster of draining workers: %+v", j)
	}
	for _, ft := range r.tasks(id) {
		ft.end <- nil
	}
	select {
	case <-idle.Drained():
	case <-time.After(10 * time.Second):
		t.Fatal("not drained after its subtasks ended")
	}
	if n := len(r.tasks(other)); n != 0 {
		t.Fatalf("%d subtasks placed on draining workers", n)
	}
}
