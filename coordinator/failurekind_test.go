package coordinator_test

import (
	"context"
	"strings"
	"testing"

	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// The coordinator acts on the failure kind a worker sends, not on the
// error's text: an UNRECOVERABLE failure whose message names no sentinel
// fails a job that the restart strategy would restart ten times.
func TestUnrecoverableKindFailsWithoutRestart(t *testing.T) {
	fc, _, cl, _ := newFakeCluster(t, 1)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("kind", "restart: {strategy: fixed, attempts: 10, delay: 0s}\n", 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	w, tid := fc.worker(id, "n0", 0)
	w.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_TaskStatus{TaskStatus: &controlpb.TaskStatus{
		Task: tid, State: controlpb.TaskState_TASK_STATE_FAILED, Error: "sink: the broker refused our credentials",
		FailureKind: controlpb.FailureKind_FAILURE_KIND_UNRECOVERABLE,
	}}})
	j := waitJob(t, cl, id, "FAILED")
	if j.Attempt != 1 || !strings.Contains(j.FailureCause, "refused our credentials") {
		t.Fatalf("job %+v", j)
	}
}
