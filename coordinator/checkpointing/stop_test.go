package checkpointing

import (
	"errors"
	"testing"
	"time"
)

// TestStopCheckpoint: a stop checkpoint waits for the one in flight, is a
// checkpoint (retained, not a savepoint) whose barrier stops the sources,
// refuses savepoints and periodic triggers while it stands, and a failed
// one neither counts towards tolerable_failures nor keeps the job stopped.
func TestStopCheckpoint(t *testing.T) {
	h := newHarness(t, Config{Interval: 10 * time.Second}, 0)
	h.advance(10 * time.Second)
	h.want("trigger 1")
	h.do(TriggerStop{Now: h.clk.Now()})
	h.want()
	if !h.tr.Stopping() {
		t.Fatal("not stopping after TriggerStop")
	}
	if _, err := h.tr.Handle(TriggerStop{Now: h.clk.Now()}); !errors.Is(err, ErrStopping) {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := h.tr.Handle(TriggerSavepoint{Now: h.clk.Now(), RequestID: "sp-x"}); !errors.Is(err, ErrStopping) {
		t.Fatalf("savepoint while stopping: %v", err)
	}
	h.ackAll(1)
	h.want("commit 1", "notify 1", "retain 3", "trigger 2 stop")

	// Declined: the sources resume, periodic checkpoints go on, and the
	// job does not fail although tolerable_failures is 0.
	h.do(Decline{Now: h.clk.Now(), Attempt: 1, ID: 2, Task: src0, Reason: "disk full"})
	h.want("abort 2")
	if h.tr.Stopping() {
		t.Fatal("still stopping after the stop checkpoint failed")
	}
	h.advance(10 * time.Second)
	h.want("trigger 3")
	h.ackAll(3)
	h.want("commit 3", "notify 3", "retain 3")

	h.do(TriggerStop{Now: h.clk.Now()})
	h.want("trigger 4 stop")
	h.ackAll(4)
	h.want("commit 4", "notify 4", "retain 3")
	if c := h.tr.Latest(); c.ID != 4 || c.Savepoint || !c.Stop {
		t.Fatalf("latest %+v", c)
	}
	// Completed: nothing more is triggered in this attempt.
	h.advance(time.Minute)
	h.want()
	if !h.tr.Stopping() {
		t.Fatal("not stopping after the stop checkpoint completed")
	}
}
