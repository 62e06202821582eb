package worker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/weir-stream/weir/dataflow"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/task"
)

// fakeCoordinator serves one Session: it hands the test what the worker
// sends and sends what the test gives it.
type fakeCoordinator struct {
	controlpb.UnimplementedCoordinatorServer
	in  chan *controlpb.WorkerMessage
	out chan *controlpb.CoordinatorMessage
}

func (c *fakeCoordinator) Session(s controlpb.Coordinator_SessionServer) error {
	if _, err := s.Recv(); err != nil {
		return err
	}
	if err := s.Send(&controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Registered{Registered: &controlpb.Registered{
		WorkerId: "w1", HeartbeatIntervalMs: 1000}}}); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case c.in <- m:
			case <-s.Context().Done():
			}
		}
	}()
	for {
		select {
		case m := <-c.out:
			if err := s.Send(m); err != nil {
				return err
			}
		case err := <-errc:
			return err
		}
	}
}

func startFakeCoordinator(t *testing.T) (*fakeCoordinator, string) {
	t.Helper()
	c := &fakeCoordinator{in: make(chan *controlpb.WorkerMessage, 64), out: make(chan *controlpb.CoordinatorMessage, 64)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	controlpb.RegisterCoordinatorServer(s, c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return c, l.Addr().String()
}

// next returns the next message the worker sent that matches keep.
func (c *fakeCoordinator) next(t *testing.T, keep func(*controlpb.WorkerMessage) bool) *controlpb.WorkerMessage {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.in:
			if keep(m) {
				return m
			}
		case <-timeout:
			t.Fatal("no matching message from the worker")
		}
	}
}

func TestCheckpointMessagesRoutedToTasks(t *testing.T) {
	coord, addr := startFakeCoordinator(t)
	commands := make(chan task.Command, 16)
	run := func(ctx context.Context, d task.Deployment, env worker.TaskEnv, _ *dataflow.Counters) error {
		if d.CheckpointDir != "file:///ck/job" || d.Restore == nil || d.Restore.CheckpointID != 4 {
			t.Errorf("deployment %+v", d)
		}
		env.Running() // restored: the subtask is RUNNING from here
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-d.Control.Ready():
			}
			for _, cmd := range d.Control.Take() {
				commands <- cmd
				if cmd.Kind == task.CmdTrigger {
					env.Reporter.Ack(&controlpb.CheckpointAck{Task: &controlpb.TaskID{JobId: d.ID.JobID, Attempt: d.ID.Attempt,
						VertexId: d.ID.VertexID, Subtask: int32(d.ID.Subtask)}, CheckpointId: cmd.CheckpointID})
				}
			}
		}
	}
	w := newWorker(t, addr, func(c *worker.Config) { c.RunTask = run })
	id := &controlpb.TaskID{JobId: "job", Attempt: 2, VertexId: "only"}
	coord.out <- &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Deploy{Deploy: &controlpb.DeployTask{
		Task: id, JobSpec: []byte("name: job"), CheckpointDir: "file:///ck/job",
		Placements: []*controlpb.Placement{{VertexId: "only", WorkerId: "w1", DataAddr: w.DataAddr()}},
		Restore:    &controlpb.Restore{CheckpointId: 4, MetadataUri: "file:///ck/job/chk-4/_metadata"}}}}
	coord.next(t, func(m *controlpb.WorkerMessage) bool {
		return m.GetTaskStatus().GetState() == controlpb.TaskState_TASK_STATE_RUNNING
	})

	// A trigger for a stale attempt is declined by the worker; the running
	// attempt gets its own.
	stale := &controlpb.TaskID{JobId: "job", Attempt: 1, VertexId: "only"}
	coord.out <- &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_TriggerCheckpoint{TriggerCheckpoint: &controlpb.TriggerCheckpoint{
		Task: stale, CheckpointId: 5}}}
	d := coord.next(t, func(m *controlpb.WorkerMessage) bool { return m.GetCheckpointDecline() != nil }).GetCheckpointDecline()
	if d.GetCheckpointId() != 5 || d.GetTask().GetAttempt() != 1 {
		t.Fatalf("decline %v", d)
	}
	coord.out <- &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_TriggerCheckpoint{TriggerCheckpoint: &controlpb.TriggerCheckpoint{
		Task: id, CheckpointId: 6, TimestampUnixMs: 77, Savepoint: true, Stop: true}}}
	a := coord.next(t, func(m *controlpb.WorkerMessage) bool { return m.GetCheckpointAck() != nil }).GetCheckpointAck()
	if a.GetCheckpointId() != 6 || a.GetTask().GetAttempt() != 2 {
		t.Fatalf("ack %v", a)
	}
	coord.out <- &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_NotifyCheckpointComplete{NotifyCheckpointComplete: &controlpb.NotifyCheckpointComplete{
		Task: id, CheckpointId: 6}}}
	coord.out <- &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_AbortCheckpoint{AbortCheckpoint: &controlpb.AbortCheckpoint{
		Task: id, CheckpointId: 7}}}
	want := []task.Command{
		{Kind: task.CmdTrigger, CheckpointID: 6, Timestamp: 77, Savepoint: true, Stop: true},
		{Kind: task.CmdComplete, CheckpointID: 6},
		{Kind: task.CmdAbort, CheckpointID: 7},
	}
	for _, w := range want {
		select {
		case got := <-commands:
			if got != w {
				t.Fatalf("command %+v, want %+v", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("command %+v not delivered", w)
		}
	}
}
