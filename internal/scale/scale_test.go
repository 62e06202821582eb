package scale_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/leakcheck"
	"github.com/weir-stream/weir/internal/scale"
)

func TestMain(m *testing.M) { leakcheck.Main(m, "weir/coordinator.", "weir/internal/scale.") }

// startCoordinator runs an in-process coordinator with a 100 ms heartbeat.
func startCoordinator(t testing.TB) (*coordinator.Coordinator, string) {
	t.Helper()
	storage := "file://" + t.TempDir()
	co, err := coordinator.New(coordinator.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: time.Minute,
		CheckpointStorage: storage, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	return co, storage
}

// TestSmallRun runs the scale harness at a small size: every subtask is
// deployed and RUNNING, heartbeats are counted, and every job completes its
// checkpoints, each notified to all its subtasks.
func TestSmallRun(t *testing.T) {
	co, storage := startCoordinator(t)
	cfg := scale.Config{
		Size:     scale.Size{Workers: 4, Slots: 3, Jobs: 2, Parallelism: 5},
		GRPCAddr: co.GRPCAddr(), Client: api.NewClient("http://" + co.HTTPAddr()), Storage: storage,
		Idle: 500 * time.Millisecond, Baseline: 100 * time.Millisecond, Checkpoints: 2, Timeout: time.Minute,
	}
	r, err := scale.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: deploy %s, %d heartbeats, %d checkpoints, span %s, overhead %s", r.Size, r.Deploy, r.Heartbeats, r.Checkpoints, r.CheckpointSpan, r.CheckpointOverhead)
	if r.Subtasks() != 20 || r.Deploy <= 0 {
		t.Errorf("subtasks %d deploy %s, want 20 and a positive time", r.Subtasks(), r.Deploy)
	}
	if r.Heartbeats == 0 {
		t.Error("no heartbeat counted in the idle phase")
	}
	// Each job: the held checkpoint and 2 more.
	if r.Checkpoints < 2*3 {
		t.Errorf("%d checkpoints measured, want at least 6", r.Checkpoints)
	}
	if r.CheckpointSpan <= 0 || r.CheckpointOverhead > r.CheckpointSpan {
		t.Errorf("checkpoint span %s overhead %s: want a positive span holding the overhead", r.CheckpointSpan, r.CheckpointOverhead)
	}
	js, err := cfg.Client.Jobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		if j.State != "CANCELLING" && j.State != "CANCELLED" {
			t.Errorf("job %s is %s after the run, want it cancelled", j.ID, j.State)
		}
	}
}

// BenchmarkRun runs the harness once per iteration at 100 workers and
// 1,000 subtasks against an in-process coordinator, for profiles of the
// coordinator under the scale benchmark's load:
//
//	go test ./internal/scale -run '^$' -bench Run -benchtime 1x -cpuprofile /tmp/scale.prof
//	go tool pprof -focus weir/coordinator /tmp/scale.prof
func BenchmarkRun(b *testing.B) {
	for range b.N {
		co, storage := startCoordinator(b)
		r, err := scale.Run(context.Background(), scale.Config{
			Size:     scale.Size{Workers: 100, Slots: 6, Jobs: 2, Parallelism: 250},
			GRPCAddr: co.GRPCAddr(), Client: api.NewClient("http://" + co.HTTPAddr()), Storage: storage,
			Idle: 2 * time.Second, Checkpoints: 5,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: deploy %s, %d heartbeats, %d checkpoints, span %s, overhead %s", r.Size, r.Deploy, r.Heartbeats, r.Checkpoints, r.CheckpointSpan, r.CheckpointOverhead)
		co.Stop()
	}
}
