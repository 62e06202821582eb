package coordinator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
)

// A job that lost a worker and waits for slots to restart is not failed
// after the scheduling timeout when its restart strategy restarts forever:
// it waits on, saying why (message, last_failure), and runs once a worker
// brings slots back.
func TestRestartWaitsForSlotsAsTheStrategyAllows(t *testing.T) {
	fc, c, cl, clk := newFakeCluster(t, 2, func(cfg *coordinator.Config) { cfg.ScheduleTimeout = 10 * time.Second })
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("wait", "restart: {strategy: exponential, initial: 1s, max: 2s}\n", 4))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	fc.workers[1].kill()
	advanceUntil(t, clk, time.Second, func() bool {
		j, _ := cl.Job(ctx, id)
		return j != nil && j.State == "SCHEDULING" && strings.Contains(j.Message, "1 so far")
	}, "a first scheduling timeout the strategy lets the job wait after")
	// Several timeouts later it still waits.
	var j *api.Job
	advanceUntil(t, clk, time.Second, func() bool {
		j, _ = cl.Job(ctx, id)
		return j != nil && (j.State != "SCHEDULING" || strings.Contains(j.Message, "4 so far"))
	}, "four scheduling timeouts")
	if j.State != "SCHEDULING" || !strings.Contains(j.Message, "needs 4 slots, 2 free") || !strings.Contains(j.Message, "restart strategy") ||
		j.LastFailure == nil || !strings.Contains(j.LastFailure.Cause, "lost") {
		t.Fatalf("job %+v (last failure %+v)", j, j.LastFailure)
	}
	startFakeWorker(t, c.GRPCAddr(), "cw", 2)
	advanceUntil(t, clk, time.Second, func() bool {
		j, _ := cl.Job(ctx, id)
		return j != nil && j.State == "RUNNING" && j.Attempt == 2
	}, "the job to run again once slots came back")
}
