package lifecycle

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/restart"
)

// failAndReschedule loses w1 at now and ends the restart delay: the job is
// SCHEDULING again, waiting for slots.
func failAndReschedule(t *testing.T, j *Job, now time.Time) {
	t.Helper()
	mustHandle(t, j, WorkerLost{Now: now, Worker: "w1", Reason: "heartbeat timeout"})
	mustHandle(t, j, TaskUpdate{Now: now, Task: TaskKey{"src", 1}, Attempt: j.Attempt, State: TaskCanceled})
	if j.State != Restarting {
		t.Fatalf("state %s after the loss", j.State)
	}
	mustHandle(t, j, Tick{Now: j.RestartAt})
	if j.State != Scheduling {
		t.Fatalf("state %s after the restart delay", j.State)
	}
}

// A job placed again after a failure waits for slots as long as its
// restart strategy allows: each scheduling timeout counts as a failure. A
// strategy that restarts forever waits forever (and places the job when
// slots come); one with attempts left waits that many timeouts more, then
// gives up.
func TestSlotWaitFollowsRestartStrategy(t *testing.T) {
	t.Run("restarts forever", func(t *testing.T) {
		j := newJob(t) // ScheduleTimeout 1m
		j.Strategy = &restart.Exponential{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2}
		deploy(t, j)
		runAll(t, j, t0)
		failAndReschedule(t, j, at(time.Minute))
		now := j.SchedulingSince
		for i := range 20 {
			mustHandle(t, j, NoSlots{Now: now, Needed: 2, Free: 1})
			now = now.Add(11 * time.Second)
			for range 6 {
				mustHandle(t, j, Tick{Now: now})
				now = now.Add(11 * time.Second)
			}
			if j.State != Scheduling {
				t.Fatalf("after %d timeouts: state %s, cause %q", i+1, j.State, j.Cause)
			}
		}
		if j.SlotWaits < 10 || !strings.Contains(j.Message, "needs 2 slots, 1 free") || !strings.Contains(j.Message, "restart strategy") {
			t.Fatalf("waits %d, message %q", j.SlotWaits, j.Message)
		}
		mustHandle(t, j, Placed{Now: now, Workers: placement})
		if j.State != Deploying || j.Attempt != 2 {
			t.Fatalf("state %s attempt %d", j.State, j.Attempt)
		}
	})
	t.Run("attempts run out", func(t *testing.T) {
		j := newJob(t)
		j.Strategy = &restart.Fixed{Attempts: 3}
		deploy(t, j)
		runAll(t, j, t0)
		failAndReschedule(t, j, at(time.Minute)) // attempt 1 of 3
		start := j.SchedulingSince
		mustHandle(t, j, NoSlots{Now: start, Needed: 2, Free: 0})
		mustHandle(t, j, Tick{Now: start.Add(time.Minute)}) // 2 of 3
		mustHandle(t, j, Tick{Now: start.Add(2 * time.Minute)})
		if j.State != Scheduling || j.SlotWaits != 2 {
			t.Fatalf("state %s waits %d", j.State, j.SlotWaits)
		}
		mustHandle(t, j, Tick{Now: start.Add(3 * time.Minute)})
		if j.State != Failed || !j.Restarts[0].GaveUp || !strings.Contains(j.Cause, "scheduling timed out after 1m0s: needs 2 slots, 0 free") ||
			!strings.Contains(j.Cause, "placed again after: worker w1 lost") || !strings.Contains(j.Cause, "not restarted: fixed: 3 of 3") {
			t.Fatalf("state %s cause %q", j.State, j.Cause)
		}
	})
	t.Run("first placement fails as before", func(t *testing.T) {
		j := newJob(t)
		j.Strategy = &restart.Exponential{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2}
		mustHandle(t, j, NoSlots{Now: t0, Needed: 2, Free: 0})
		if strings.Contains(j.Message, "restart strategy") {
			t.Fatalf("message %q", j.Message)
		}
		mustHandle(t, j, Tick{Now: at(time.Minute)})
		if j.State != Failed || !strings.HasPrefix(j.Cause, "scheduling timed out after 1m0s: needs 2 slots, 0 free") {
			t.Fatalf("state %s cause %q", j.State, j.Cause)
		}
	})
}
