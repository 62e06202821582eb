package worker

import (
	"context"
	"sync"

	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// Draining (docs/failover.md, "Draining a worker"): Drain asks the
// coordinator to move every subtask off this worker; the coordinator
// answers DrainStarted (or sends it unasked when an operator drained the
// worker over the REST API) after which it deploys nothing more here.
// Drained is closed once the coordinator has answered and the worker holds
// no subtask: the process may exit without failing a job.

// drainState is the worker's side of a drain.
type drainState struct {
	mu sync.Mutex
	// reason is set once a drain was asked for (here or by the
	// coordinator); "" before.
	reason string
	// acked: the coordinator of the current session started the drain.
	acked   bool
	drained chan struct{}
	once    sync.Once
	// leaving is closed by Leave: the session loop ends the session
	// cleanly and closes left.
	leaving   chan struct{}
	leaveOnce sync.Once
	left      chan struct{}
}

func (d *drainState) init() {
	d.drained, d.leaving, d.left = make(chan struct{}), make(chan struct{}), make(chan struct{})
}

// Leave ends the session with the coordinator cleanly and does not
// reconnect: every message sent before (the last subtasks' FINISHED) is
// delivered and handled before the coordinator sees the session end. A
// drained worker leaves before it stops; cancelling the stream instead
// (Stop) may drop what is still buffered, and the coordinator would take
// the worker for lost with its subtasks running. It returns when the
// session ended or ctx is done.
func (w *Worker) Leave(ctx context.Context) {
	w.drain.leaveOnce.Do(func() { close(w.drain.leaving) })
	w.wake()
	select {
	case <-w.drain.left:
	case <-ctx.Done():
	}
}

// Drain asks the coordinator to drain this worker (again is a no-op). It
// does not block: wait on Drained.
func (w *Worker) Drain(reason string) {
	w.drain.mu.Lock()
	if w.drain.reason == "" {
		w.drain.reason = reason
		w.log.Info("draining: asking the coordinator to move the subtasks away", "reason", reason, "tasks", w.taskCount())
	}
	w.drain.mu.Unlock()
	w.wake()
}

// Draining reports whether a drain was asked for, by Drain or by the
// coordinator.
func (w *Worker) Draining() bool {
	w.drain.mu.Lock()
	defer w.drain.mu.Unlock()
	return w.drain.reason != ""
}

// Drained is closed once the coordinator started draining this worker and
// the worker holds no subtask.
func (w *Worker) Drained() <-chan struct{} { return w.drain.drained }

// drainRequest is the DrainRequest to send on a session that has not sent
// one, or nil.
func (w *Worker) drainRequest() *controlpb.WorkerMessage {
	w.drain.mu.Lock()
	defer w.drain.mu.Unlock()
	if w.drain.reason == "" {
		return nil
	}
	return &controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Drain{Drain: &controlpb.DrainRequest{Reason: w.drain.reason}}}
}

// drainStarted handles the coordinator's DrainStarted.
func (w *Worker) drainStarted(m *controlpb.DrainStarted) {
	w.drain.mu.Lock()
	if w.drain.reason == "" {
		w.drain.reason = m.GetReason()
		w.log.Info("the coordinator is draining this worker", "reason", m.GetReason(), "tasks", w.taskCount())
	}
	w.drain.acked = true
	w.drain.mu.Unlock()
	w.checkDrained()
}

// newDrainSession forgets the previous coordinator's answer: a new session
// asks again.
func (w *Worker) newDrainSession() {
	w.drain.mu.Lock()
	w.drain.acked = false
	w.drain.mu.Unlock()
}

// checkDrained closes Drained once the drain is started and no subtask is
// left (ended ones are forgotten once their final status went out).
func (w *Worker) checkDrained() {
	w.drain.mu.Lock()
	acked := w.drain.acked
	w.drain.mu.Unlock()
	if acked && w.taskCount() == 0 {
		w.drain.once.Do(func() {
			w.log.Info("drained: no subtask left")
			close(w.drain.drained)
		})
	}
}

func (w *Worker) taskCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.tasks)
}
