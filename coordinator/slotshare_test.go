package coordinator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
)

// slotsUsed returns the REST workers list's slots_used per worker.
func slotsUsed(t *testing.T, cl *api.Client) map[string]int {
	t.Helper()
	ws, err := cl.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, w := range ws {
		out[w.ID] = w.SlotsUsed
	}
	return out
}

// With slot sharing a job with 3 vertices at parallelism 8 runs on 8 slots
// (before it needed 24 and waited in SCHEDULING); subtask i of every
// vertex shares one slot, so it runs on one worker; the used slots count
// across jobs, and a restart places the job again without counting its
// old attempt twice.
func TestSlotSharing(t *testing.T) {
	clk := clock.NewManual(t0)
	c := startCoordinator(t, clk)
	r := newFakeRunner()
	startWorker(t, c.GRPCAddr(), "w1", 4, r)
	startWorker(t, c.GRPCAddr(), "w2", 4, r)
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()
	eventually(t, 10*time.Second, func() bool { ws, err := cl.Workers(ctx); return err == nil && len(ws) == 2 }, "two workers")

	id, err := cl.Submit(ctx, jobSpecWith("wide", "restart: {strategy: fixed, attempts: 1, delay: 0s}\n", 8, 8, 8))
	if err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, cl, id, "RUNNING")
	waitTasks(t, r, id, 24)
	checkGroups := func(j *api.Job) {
		t.Helper()
		for i := 0; i < 8; i++ {
			w := j.Vertices[0].Subtasks[i].Worker
			for _, v := range j.Vertices {
				if v.Subtasks[i].Worker != w || w == "" {
					t.Fatalf("subtask %d: %s on %q, %s on %q", i, j.Vertices[0].ID, w, v.ID, v.Subtasks[i].Worker)
				}
			}
		}
	}
	checkGroups(j)
	if got := slotsUsed(t, cl); got["w1"] != 4 || got["w2"] != 4 {
		t.Fatalf("slots used %v, want 4 on each worker", got)
	}

	// A restart places the job again on the same 8 slots.
	r.task(id, "n1", 3).end <- errors.New("boom")
	advanceUntil(t, clk, time.Second, func() bool {
		j, _ := cl.Job(ctx, id)
		return j.State == "RUNNING" && j.Attempt == 2
	}, "attempt 2 to run")
	j = waitJob(t, cl, id, "RUNNING")
	checkGroups(j)
	if got := slotsUsed(t, cl); got["w1"] != 4 || got["w2"] != 4 {
		t.Fatalf("after the restart slots used %v, want 4 on each worker", got)
	}

	// The cluster is full: another job waits, counted over both jobs.
	id2, err := cl.Submit(ctx, jobSpec("small", 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if j2 := waitJob(t, cl, id2, "SCHEDULING"); !strings.Contains(j2.Message, "needs 1 slots, 0 free") {
		t.Fatalf("message %q", j2.Message)
	}

	// Cancelling the wide job frees its slots for the small one.
	if err := cl.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "CANCELLED")
	waitJob(t, cl, id2, "RUNNING")
	eventually(t, 10*time.Second, func() bool {
		got := slotsUsed(t, cl)
		return got["w1"]+got["w2"] == 1
	}, "one slot used by the small job")
}
