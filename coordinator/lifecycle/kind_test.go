package lifecycle

import (
	"strings"
	"testing"

	"github.com/weir-stream/weir/coordinator/restart"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

func reportKind(t *testing.T, j *Job, k TaskKey, s TaskState, msg string, kind FailureKind) {
	t.Helper()
	mustHandle(t, j, TaskUpdate{Now: t0, Task: k, Attempt: j.Attempt, State: s, Error: msg, Kind: kind})
}

// The failure kind a worker sends decides, not the error's text: an
// UNRECOVERABLE failure whose text names no sentinel fails the job for
// good; an OTHER failure whose text happens to quote the unrecoverable
// sentinel (a user's message, say) is restarted. Without a kind (an older
// worker) the text decides as before.
func TestFailureKindDecidesRestart(t *testing.T) {
	fixed := func(j *Job) {
		j.Strategy = restart.New(&spec.Restart{Strategy: "fixed", Attempts: 10}, func() float64 { return 0 })
	}
	quoting := "user error: " + dataflow.ErrUnrecoverable.Error()
	for _, tc := range []struct {
		name      string
		msg       string
		kind      FailureKind
		wantState State
	}{
		{"unrecoverable kind, plain text", "kafka: refused", KindUnrecoverable, Failed},
		{"other kind, quoting the sentinel", quoting, KindOther, Restarting},
		{"no kind, quoting the sentinel", quoting, KindUnknown, Failed},
		{"no kind, plain text", "kafka: refused", KindUnknown, Restarting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(t)
			fixed(j)
			deploy(t, j)
			reportKind(t, j, TaskKey{"src", 0}, TaskFailed, tc.msg, tc.kind)
			report(t, j, TaskKey{"src", 1}, TaskCanceled, "")
			report(t, j, TaskKey{"sink", 0}, TaskCanceled, "")
			if j.State != tc.wantState {
				t.Fatalf("state %s (cause %q), want %s", j.State, j.Cause, tc.wantState)
			}
		})
	}
}

// A broken channel is recognised by its kind: the root cause reported
// after it replaces it, whatever the texts say.
func TestFailureKindChannelBrokenYieldsToRootCause(t *testing.T) {
	j := newJob(t)
	deploy(t, j)
	reportKind(t, j, TaskKey{"sink", 0}, TaskFailed, "input closed early", KindChannelBroken)
	reportKind(t, j, TaskKey{"src", 1}, TaskFailed, "invalid JSON at offset 3", KindOther)
	if !strings.Contains(j.Cause, "src[1]") || j.Restarts[0].Task != "src[1]" {
		t.Fatalf("cause %q, restart %+v", j.Cause, j.Restarts[0])
	}
	// A root cause is not replaced by a later one.
	reportKind(t, j, TaskKey{"src", 0}, TaskFailed, "disk full", KindOther)
	if !strings.Contains(j.Cause, "invalid JSON") {
		t.Fatalf("cause %q", j.Cause)
	}
}

func TestIsCorruptState(t *testing.T) {
	if !IsCorruptState(KindCorruptState, "restore: file missing") || IsCorruptState(KindOther, "checkpoint: corrupt") ||
		!IsCorruptState(KindUnknown, "restore n0: checkpoint: corrupt: checksum") || IsCorruptState(KindUnknown, "boom") {
		t.Fatal("IsCorruptState")
	}
}
