package coordinator_test

import (
	"context"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/builder"
)

// TestRealWorkerCheckpointsAndFailover runs the real worker runtime (spec,
// graph, builder, tasks) under the coordinator: checkpoints complete, a
// savepoint completes, and a lost worker restarts the job from the latest
// checkpoint.
func TestRealWorkerCheckpointsAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real workers")
	}
	clk := clock.NewManual(t0)
	root := t.TempDir()
	c := startCoordinator(t, clk, func(cfg *coordinator.Config) {
		cfg.ParseSpec, cfg.BuildGraph = spec.Parse, graph.Build
		cfg.CheckpointStorage = "file://" + root
		cfg.HeartbeatTimeout = 1000 * time.Hour
	})
	start := func(id string) *worker.Worker {
		w, err := worker.New(worker.Config{CoordinatorAddr: c.GRPCAddr(), DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Slots: 2, ID: id, Builder: builder.New(), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		return w
	}
	w1 := start("r1")
	start("r2")
	start("r3")
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 3 }, "workers")
	id, err := cl.Submit(ctx, []byte(`name: real
parallelism: 2
checkpoint: {interval: 1s}
restart: {strategy: fixed, attempts: 3, delay: 0s}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 1000}}
  - name: by-id
    key_by: id
  - name: out
    sink: {discard: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	advanceUntil(t, clk, 100*time.Millisecond, func() bool {
		cs, _ := cl.Checkpoints(ctx, id)
		return cs != nil && cs.Counts.Completed >= 2
	}, "two checkpoints to complete")
	cs, _ := cl.Checkpoints(ctx, id)
	t.Logf("checkpoints: %+v latest %+v", cs.Counts, cs.Latest)
	sp, err := cl.TriggerSavepoint(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, clk, 100*time.Millisecond, func() bool {
		s, _ := cl.Savepoint(ctx, id, sp.RequestID)
		return s != nil && s.Status != "IN_PROGRESS"
	}, "savepoint")
	s, _ := cl.Savepoint(ctx, id, sp.RequestID)
	if s.Status != "COMPLETED" {
		t.Fatalf("savepoint %+v", s)
	}
	w1.Stop()
	advanceUntil(t, clk, 100*time.Millisecond, func() bool {
		j, _ := cl.Job(ctx, id)
		return j != nil && j.Attempt == 2 && j.State == "RUNNING"
	}, "restart")
	advanceUntil(t, clk, 100*time.Millisecond, func() bool {
		rs, _ := cl.Restarts(ctx, id)
		return rs != nil && len(rs.Restarts) == 1 && rs.Restarts[0].RunningAt != nil
	}, "running after restore")
	rs, _ := cl.Restarts(ctx, id)
	t.Logf("restart: %+v", rs.Restarts[0])
	if rs.Restarts[0].RestoredFrom == 0 {
		t.Fatal("not restored from a checkpoint")
	}
	if err := cl.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "CANCELLED")

	// The savepoint restores a new job at parallelism 1, which then stops
	// with a savepoint and ends FINISHED.
	id2, err := cl.SubmitFromSavepoint(ctx, []byte(`name: real2
parallelism: 1
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 1000}}
  - name: by-id
    key_by: id
  - name: out
    sink: {discard: {}}
`), s.Location)
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id2, "RUNNING")
	sp2, err := cl.TriggerSavepoint(ctx, id2, true)
	if err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, clk, 100*time.Millisecond, func() bool {
		j, _ := cl.Job(ctx, id2)
		return j != nil && j.State == "FINISHED"
	}, "stop with savepoint to finish the job")
	if s, _ := cl.Savepoint(ctx, id2, sp2.RequestID); s.Status != "COMPLETED" {
		t.Fatalf("%+v", s)
	}
}
