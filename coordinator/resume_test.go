package coordinator_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/netaddr"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/builder"
)

// TestCoordinatorRestartResumesJobs stops a coordinator and starts another
// on the same checkpoint storage and address: the workers re-register, a
// cancelled and a finished job are listed as they ended, checkpoint ids
// continue upwards, and the running job keeps its id and either
//   - adopt: is adopted as it runs (the workers kept its subtasks through
//     their reconnect grace and reported them): same attempt, no restore;
//   - restore: restarts from its latest completed checkpoint (the workers
//     cancelled their subtasks when the session broke).
func TestCoordinatorRestartResumesJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real workers")
	}
	t.Run("adopt", func(t *testing.T) { testResume(t, 0) })
	t.Run("restore", func(t *testing.T) { testResume(t, -1) })
}

func testResume(t *testing.T, grace time.Duration) {
	root := t.TempDir()
	grpcAddr := freeTCPAddr(t)
	start := func() *coordinator.Coordinator {
		return startCoordinator(t, clock.Real{}, func(cfg *coordinator.Config) {
			cfg.ParseSpec, cfg.BuildGraph = spec.Parse, graph.Build
			cfg.CheckpointStorage = "file://" + root
			cfg.GRPCAddr = grpcAddr
			// Adopting needs both workers back within the window: a
			// second was too short on a loaded machine (the job was
			// restored instead). Restoring waits the window out, so it
			// stays short there.
			cfg.AdoptWindow = time.Second
			if grace >= 0 {
				// Adoption ends the window as soon as every subtask
				// is reported (tryAdoptLocked): a long window is only
				// a backstop, and 15s was exhausted under load 10-16.
				cfg.AdoptWindow = 2 * time.Minute
			}
		})
	}
	c1 := start()
	for _, id := range []string{"r1", "r2"} {
		w, err := worker.New(worker.Config{CoordinatorAddr: grpcAddr, DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Slots: 2, ID: id, Builder: builder.New(), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
			ReconnectGrace: grace})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	ctx := context.Background()
	cl := api.NewClient("http://" + c1.HTTPAddr())
	eventually(t, time.Minute, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 2 }, "workers")

	out := filepath.Join(t.TempDir(), "finished")
	finished := submit(t, cl, `name: bounded
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 10}}
  - name: out
    sink: {file: {path: `+out+`}}
`)
	waitJob(t, cl, finished, "FINISHED")
	cancelled := submit(t, cl, `name: cancelled
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 100}}
  - name: out
    sink: {discard: {}}
`)
	waitJob(t, cl, cancelled, "RUNNING")
	if err := cl.Cancel(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, cancelled, "CANCELLED")
	running := submit(t, cl, `name: resumed
parallelism: 2
checkpoint: {interval: 200ms}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 1000}}
  - name: by-id
    key_by: id
  - name: out
    sink: {discard: {}}
`)
	waitJob(t, cl, running, "RUNNING")
	var before int64
	eventually(t, time.Minute, func() bool {
		cs, _ := cl.Checkpoints(ctx, running)
		if cs == nil || cs.Latest == nil || cs.Counts.Completed < 2 {
			return false
		}
		before = cs.Latest.ID
		return true
	}, "two checkpoints to complete")

	// An ended job shows after the restart what it showed before.
	type shown struct {
		attempt   int64
		started   bool
		strategy  string
		enabled   bool
		completed int
	}
	show := func(cl *api.Client, id string) shown {
		t.Helper()
		j, err := cl.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := cl.Restarts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := cl.Checkpoints(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return shown{j.Attempt, j.StartedAt != nil, rs.Strategy, cs.Config.Enabled, cs.Counts.Completed}
	}
	endedBefore := map[string]shown{finished: show(cl, finished), cancelled: show(cl, cancelled)}
	if s := endedBefore[finished]; s.attempt != 1 || !s.started {
		t.Fatalf("the finished job before the restart: %+v", s)
	}

	c1.Stop()
	c2 := start()
	cl = api.NewClient("http://" + c2.HTTPAddr())

	jobs, err := cl.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, j := range jobs {
		got[j.ID] = j.Name
	}
	if len(jobs) != 3 || got[finished] != "bounded" || got[cancelled] != "cancelled" || got[running] != "resumed" {
		t.Fatalf("the new coordinator lists %+v", jobs)
	}
	waitJob(t, cl, finished, "FINISHED")
	waitJob(t, cl, cancelled, "CANCELLED")
	for id, before := range endedBefore {
		if after := show(cl, id); after != before {
			t.Errorf("ended job %s showed %+v before the coordinator restart and %+v after (started again, or its record forgot)", id, before, after)
		}
	}
	want := int64(2) // restarted after the first coordinator's attempt 1
	if grace >= 0 {
		want = 1 // adopted
	}
	if j := waitJob(t, cl, running, "RUNNING"); j.Attempt != want {
		t.Errorf("the resumed job runs attempt %d, want %d", j.Attempt, want)
	}
	var cs *api.Checkpoints
	eventually(t, time.Minute, func() bool {
		cs, _ = cl.Checkpoints(ctx, running)
		return cs != nil && cs.Latest != nil && cs.Latest.ID > before
	}, "a checkpoint after the restart")
	if r := cs.LatestRestore; grace >= 0 && r != nil {
		t.Fatalf("the adopted attempt restored from %+v", r)
	} else if grace < 0 && (r == nil || r.CheckpointID < before) {
		t.Fatalf("resumed from %+v, want checkpoint %d or later", r, before)
	}
	data, err := os.ReadFile(out)
	if err != nil || strings.Count(string(data), "\n") != 10 {
		t.Fatalf("the finished job's output was touched: %q %v", data, err)
	}
}

func submit(t *testing.T, cl *api.Client, specYAML string) string {
	t.Helper()
	id, err := cl.Submit(context.Background(), []byte(specYAML))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	addr, err := netaddr.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
