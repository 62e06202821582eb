package coordinator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// heartbeat sends one heartbeat with the worker's memory and one task's
// status (links, state sizes).
func (fw *fakeWorker) heartbeat(mem *controlpb.MemoryStats, tasks ...*controlpb.TaskStatus) {
	fw.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Heartbeat{Heartbeat: &controlpb.Heartbeat{
		UnixMs: time.Now().UnixMilli(), Tasks: tasks, Memory: mem}}})
}

// A worker that reports its memory near its limit and then disappears is
// reported as likely killed for memory; before that the job status warns,
// and shows which source or sink cannot reach its brokers.
func TestWorkerNearMemoryLimitWarnsAndItsLossSaysOOM(t *testing.T) {
	fc, _, cl, clk := newFakeCluster(t, 2)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("mem", "restart: {strategy: fixed, attempts: 3, delay: 1s}\n", 2))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { j, _ := cl.Job(ctx, id); return j.State == "RUNNING" }, "job running")
	victim, tid := fc.worker(id, "n0", 0)
	other, tid1 := fc.worker(id, "n0", 1)
	if victim == other {
		t.Fatal("both subtasks on one worker; the test needs them apart")
	}
	since := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
	const limit = 1536 << 20
	victim.heartbeat(&controlpb.MemoryStats{HeapLiveBytes: 1200 << 20, TotalBytes: 1420 << 20, LimitBytes: limit},
		&controlpb.TaskStatus{Task: tid, State: controlpb.TaskState_TASK_STATE_RUNNING, Metrics: &controlpb.TaskMetrics{
			BackpressuredMs: 7000,
			Links: []*controlpb.Link{{Node: "n0", Target: "kafka 127.0.0.1:9 topic out", Connected: false,
				UnreachableSinceUnixMs: since.UnixMilli(), LastError: "dial tcp 127.0.0.1:9: connection refused"}},
			StateSizes: []*controlpb.StateSize{{Node: "n0", Bytes: 900 << 20}},
		}})
	other.heartbeat(&controlpb.MemoryStats{HeapLiveBytes: 100 << 20, TotalBytes: 300 << 20, LimitBytes: limit},
		&controlpb.TaskStatus{Task: tid1, State: controlpb.TaskState_TASK_STATE_RUNNING, Metrics: &controlpb.TaskMetrics{
			Links: []*controlpb.Link{{Node: "n0", Target: "kafka 127.0.0.1:9 topic out", Connected: true}},
		}})

	var j *api.Job
	eventually(t, 10*time.Second, func() bool {
		j, _ = cl.Job(ctx, id)
		// Both heartbeats handled: the warnings come from the victim's
		// alone, so wait for the other's links too.
		return j != nil && len(j.Warnings) == 2 && len(j.Vertices[0].Subtasks[1].Links) == 1
	}, "two warnings and both subtasks' links")
	sub := j.Vertices[0].Subtasks[0]
	if len(sub.Links) != 1 || sub.Links[0].Connected || sub.Links[0].UnreachableSince == nil || !sub.Links[0].UnreachableSince.Equal(since) ||
		!strings.Contains(sub.Links[0].LastError, "connection refused") || sub.StateBytes["n0"] != 900<<20 || sub.BackpressuredMs != 7000 {
		t.Fatalf("subtask 0: %+v", sub)
	}
	if l := j.Vertices[0].Subtasks[1].Links; len(l) != 1 || !l[0].Connected || l[0].UnreachableSince != nil {
		t.Fatalf("subtask 1 links: %+v", l)
	}
	if w := j.Warnings[0]; !strings.Contains(w, "n0 (n0[0]) cannot reach kafka 127.0.0.1:9 topic out since 2026-12-05T07:00:00Z: dial tcp") {
		t.Fatalf("link warning: %q", w)
	}
	if w := j.Warnings[1]; !strings.Contains(w, "worker "+victim.id+" holds 1.4 GiB of its 1.5 GiB memory limit (92%)") || !strings.Contains(w, "n0 900.0 MiB") {
		t.Fatalf("memory warning: %q", w)
	}
	ws, err := cl.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.ID == victim.id && (w.MemoryBytes != 1420<<20 || w.HeapLiveBytes != 1200<<20 || w.MemoryLimitBytes != limit) {
			t.Fatalf("worker memory: %+v", w)
		}
	}

	victim.kill()
	var rs *api.Restarts
	advanceUntil(t, clk, time.Second, func() bool {
		rs, _ = cl.Restarts(ctx, id)
		return rs != nil && len(rs.Restarts) == 1
	}, "the restart")
	if c := rs.Restarts[0].Cause; !strings.Contains(c, "session closed") || !strings.Contains(c, "1.4 GiB of its 1.5 GiB memory limit (92%") ||
		!strings.Contains(c, "likely killed for running out of memory") {
		t.Fatalf("cause: %q", c)
	}
}

// A job that cannot be placed again after its worker was lost near its
// memory limit fails saying so, not only that scheduling timed out.
func TestScheduleTimeoutAfterLossKeepsTheCause(t *testing.T) {
	fc, _, cl, clk := newFakeCluster(t, 1, func(cfg *coordinator.Config) { cfg.ScheduleTimeout = 30 * time.Second })
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("oom", "restart: {strategy: fixed, attempts: 3, delay: 1s}\n", 2))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { j, _ := cl.Job(ctx, id); return j.State == "RUNNING" }, "job running")
	w := fc.workers[0]
	w.heartbeat(&controlpb.MemoryStats{HeapLiveBytes: 900 << 20, TotalBytes: 1000 << 20, LimitBytes: 1024 << 20})
	eventually(t, 10*time.Second, func() bool {
		ws, _ := cl.Workers(ctx)
		return len(ws) == 1 && ws[0].MemoryLimitBytes == 1024<<20
	}, "the heartbeat")
	w.kill()
	var j *api.Job
	advanceUntil(t, clk, 5*time.Second, func() bool {
		j, _ = cl.Job(ctx, id)
		return j != nil && j.State == "FAILED"
	}, "the job to fail")
	if !strings.Contains(j.FailureCause, "scheduling timed out") || !strings.Contains(j.FailureCause, "likely killed for running out of memory") {
		t.Fatalf("failure cause %q", j.FailureCause)
	}
	t.Log(j.FailureCause)
}
