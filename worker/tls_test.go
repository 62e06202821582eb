package worker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/tlsconf/tlstest"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/builder"
)

// Workers with the cluster's certificate register over mutual TLS, also
// when given several coordinator addresses (each is checked against its
// own host, not the made-up name of the address list), and a job's
// records cross between them over the data plane's TLS.
func TestWorkersOverMutualTLS(t *testing.T) {
	pki := tlstest.New(t)
	c, err := coordinator.New(coordinator.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 5 * time.Second,
		CheckpointStorage: "file://" + t.TempDir(), TLS: tlstest.Source(t, pki.Cluster)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String() // a standby: nothing answers
	l.Close()
	for _, id := range []string{"t1", "t2"} {
		w, err := worker.New(worker.Config{CoordinatorAddr: dead + "," + c.GRPCAddr(), DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Slots: 2, ID: id, Builder: builder.New(), TLS: tlstest.Source(t, pki.Cluster),
			ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
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
	eventually(t, 20*time.Second, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 2 }, "two workers registered over TLS")
	id, err := cl.Submit(ctx, []byte(`name: tls
parallelism: 2
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 2000}}
  - name: by-id
    key_by: id
  - name: sink
    sink: {discard: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	var j *api.Job
	eventually(t, 60*time.Second, func() bool {
		j, _ = cl.Job(ctx, id)
		return j != nil && (j.State == "FINISHED" || j.State == "FAILED")
	}, "job to end")
	if j.State != "FINISHED" {
		t.Fatalf("job %s: %s", j.State, j.FailureCause)
	}
	var in int64
	workers := map[string]bool{}
	for _, v := range j.Vertices {
		for _, s := range v.Subtasks {
			workers[s.Worker] = true
			if v.ID != "gen" {
				in += s.RecordsIn
			}
		}
	}
	if in != 2000 || len(workers) != 2 {
		t.Fatalf("the sinks read %d records on workers %v, want 2000 across both: %+v", in, workers, j.Vertices)
	}
}
