//go:build integration

// Run with: go test -tags integration -run TestRealPipeline ./worker/
// (needs spec, graph, task, exchange and builder to agree on their APIs).

package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/builder"
)

// TestRealPipeline runs a bounded job over two workers with the real spec
// parser, graph builder, task runner and data exchange: the records cross
// workers through the Exchange.
func TestRealPipeline(t *testing.T) {
	c, err := coordinator.New(coordinator.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 5 * time.Second,
		CheckpointStorage: "file://" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	for _, id := range []string{"r1", "r2"} {
		w, err := worker.New(worker.Config{CoordinatorAddr: c.GRPCAddr(), DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Slots: 2, ID: id, Builder: builder.New()})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 2 }, "workers")
	id, err := cl.Submit(ctx, []byte(`name: real
parallelism: 2
pipeline:
  - name: gen
    source:
      datagen:
        profile: sequence
        count: 1000
  - name: sink
    parallelism: 1
    sink:
      discard: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	var j *api.Job
	eventually(t, 30*time.Second, func() bool {
		j, _ = cl.Job(ctx, id)
		return j != nil && (j.State == "FINISHED" || j.State == "FAILED")
	}, "job to end")
	if j.State != "FINISHED" {
		t.Fatalf("job %s: %s", j.State, j.FailureCause)
	}
	var in int64
	for _, v := range j.Vertices {
		if v.ID == "sink" {
			for _, s := range v.Subtasks {
				in += s.RecordsIn
			}
		}
	}
	if in != 1000 {
		t.Fatalf("sink read %d records, want 1000: %+v", in, j.Vertices)
	}
}
