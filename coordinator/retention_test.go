package coordinator_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
)

func jobIDs(t *testing.T, cl *api.Client) []string {
	t.Helper()
	js, err := cl.Jobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// Ended jobs are forgotten past the retention, by count and by age: gone
// from the REST API, from /metrics and from the job store, so a
// coordinator that starts again on the same storage does not list them.
// A job that has not ended stays however old it is. Before, every job
// stayed for ever (36,584 lines of /metrics after ~150 jobs).
func TestRetentionForgetsEndedJobs(t *testing.T) {
	root := t.TempDir()
	clk := clock.NewManual(t0)
	c := startCoordinator(t, clk, func(cfg *coordinator.Config) {
		cfg.HeartbeatTimeout = 1000 * time.Hour
		cfg.CheckpointStorage = "file://" + root
		cfg.RetainedJobs = 3
		cfg.JobRetention = time.Hour
	})
	startFakeWorker(t, c.GRPCAddr(), "w", 2)
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()

	var ended []string
	for i := range 5 {
		id, err := cl.Submit(ctx, jobSpec(fmt.Sprintf("j%d", i), 1))
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id, "RUNNING")
		if err := cl.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id, "CANCELLED")
		ended = append(ended, id)
		clk.Advance(time.Minute) // later jobs end later
	}
	// By count: the three most recently ended stay.
	eventually(t, 10*time.Second, func() bool { return slices.Equal(jobIDs(t, cl), sorted(ended[2:]...)) },
		"only the 3 most recently ended jobs to be listed (listed %v)", jobIDs(t, cl))
	for _, id := range ended[:2] {
		if resp, _ := do(t, "GET", "http://"+c.HTTPAddr()+"/api/v1/jobs/"+id, ""); resp.StatusCode != 404 {
			t.Errorf("GET forgotten job %s: %d, want 404", id, resp.StatusCode)
		}
	}
	_, metrics := do(t, "GET", "http://"+c.HTTPAddr()+"/metrics", "")
	for _, id := range ended[:2] {
		if strings.Contains(string(metrics), `job="`+id+`"`) {
			t.Errorf("/metrics still has series of forgotten job %s", id)
		}
	}
	if !strings.Contains(string(metrics), `weir_job_attempt{job="`+ended[4]+`"}`) {
		t.Errorf("/metrics lacks the retained job %s", ended[4])
	}
	if !strings.Contains(string(metrics), `weir_jobs{state="CANCELLED"} 3`) {
		t.Errorf("/metrics does not count 3 cancelled jobs")
	}

	// By age: an hour after they ended, the ended jobs go; the running one
	// stays.
	running, err := cl.Submit(ctx, jobSpec("runs", 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, running, "RUNNING")
	clk.Advance(30 * time.Minute)
	if got := jobIDs(t, cl); !slices.Equal(got, sorted(append([]string{running}, ended[2:]...)...)) {
		t.Fatalf("after 30 minutes: listed %v", got)
	}
	advanceUntil(t, clk, time.Minute, func() bool { return slices.Equal(jobIDs(t, cl), []string{running}) },
		"the ended jobs to be forgotten an hour after they ended")
	_, metrics = do(t, "GET", "http://"+c.HTTPAddr()+"/metrics", "")
	for _, id := range ended {
		if strings.Contains(string(metrics), `job="`+id+`"`) {
			t.Errorf("/metrics still has series of forgotten job %s", id)
		}
	}

	// Not resurrected: a coordinator on the same storage that keeps every
	// ended job lists only the running one.
	c.Stop()
	c2 := startCoordinator(t, clock.NewManual(t0), func(cfg *coordinator.Config) {
		cfg.CheckpointStorage = "file://" + root
		cfg.RetainedJobs = -1
		cfg.JobRetention = -1
	})
	if got := jobIDs(t, api.NewClient("http://"+c2.HTTPAddr())); !slices.Equal(got, []string{running}) {
		t.Fatalf("after a restart: listed %v, want only %s", got, running)
	}
}

// Ended jobs found in the job store at start that are past the retention
// are forgotten before the REST API lists them.
func TestRetentionAtStart(t *testing.T) {
	root := t.TempDir()
	c := startCoordinator(t, clock.NewManual(t0), func(cfg *coordinator.Config) {
		cfg.HeartbeatTimeout = 1000 * time.Hour
		cfg.CheckpointStorage = "file://" + root
	})
	startFakeWorker(t, c.GRPCAddr(), "w", 2)
	cl := api.NewClient("http://" + c.HTTPAddr())
	var ids []string
	for i := range 3 {
		id, err := cl.Submit(context.Background(), jobSpec(fmt.Sprintf("j%d", i), 1))
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id, "RUNNING")
		if err := cl.Cancel(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id, "CANCELLED")
		ids = append(ids, id)
	}
	c.Stop()
	c2 := startCoordinator(t, clock.NewManual(t0), func(cfg *coordinator.Config) {
		cfg.CheckpointStorage = "file://" + root
		cfg.RetainedJobs = 1
	})
	if got := jobIDs(t, api.NewClient("http://"+c2.HTTPAddr())); len(got) != 1 {
		t.Fatalf("listed %v, want one job", got)
	}
}
