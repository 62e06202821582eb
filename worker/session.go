package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlpb "github.com/weir-stream/weir/proto/control/v1"
	"github.com/weir-stream/weir/worker/task"
)

// sessionLoop holds a session with the coordinator until Stop, reconnecting
// with backoff.
func (w *Worker) sessionLoop() {
	backoff := w.cfg.ReconnectMin
	var lostAt time.Time // when the last session broke; zero while none did
	defer close(w.drain.left)
	for w.ctx.Err() == nil {
		registered, err := w.runSession(w.ctx)
		w.connected.Store(false)
		select {
		case <-w.drain.leaving:
			w.log.Info("left the coordinator", "err", err)
			return
		default:
		}
		if w.ctx.Err() != nil {
			w.cancelAllTasks()
			return
		}
		if registered {
			lostAt = time.Now()
		}
		// The subtasks keep running through a short outage (a coordinator
		// restarting, a new leader being elected): the next registration
		// reports them and the coordinator decides. Past the grace they
		// are cancelled here.
		if !lostAt.IsZero() && (w.cfg.ReconnectGrace < 0 || time.Since(lostAt) >= w.cfg.ReconnectGrace) {
			if n := w.cancelAllTasks(); n > 0 {
				w.log.Warn("no coordinator within the reconnect grace; cancelled the subtasks", "tasks", n, "grace", w.cfg.ReconnectGrace)
			}
			lostAt = time.Time{}
		}
		if registered {
			backoff = w.cfg.ReconnectMin
			w.log.Warn("session with the coordinator ended; reconnecting", "err", err, "grace", w.cfg.ReconnectGrace)
		} else if c := status.Code(err); c == codes.AlreadyExists || c == codes.InvalidArgument {
			// AlreadyExists: our previous session (or another process
			// with our id) is still registered; it is dropped within the
			// coordinator's heartbeat timeout.
			w.log.Warn("the coordinator refused the registration; retrying", "addr", w.cfg.CoordinatorAddr, "err", err, "in", backoff)
		} else {
			w.log.Warn("cannot reach the coordinator; retrying", "addr", w.cfg.CoordinatorAddr, "err", err, "in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return
		case <-w.drain.leaving:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, w.cfg.ReconnectMax)
	}
}

// runSession runs one session; registered says whether it got that far.
func (w *Worker) runSession(parent context.Context) (registered bool, err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stream, err := w.newClient().Session(ctx)
	if err != nil {
		return false, err
	}
	if err := stream.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: &controlpb.Register{
		WorkerId: w.cfg.ID, DataAddr: w.advertise, Slots: int32(w.cfg.Slots), HttpAddr: w.httpAdv, Version: w.cfg.Version,
		Tasks: w.registrationStatuses(), Operators: w.cfg.Operators, GoVersion: runtime.Version(), DeployAsBefore: true,
	}}}); err != nil {
		return false, err
	}
	first, err := stream.Recv()
	if err != nil {
		return false, err
	}
	reg := first.GetRegistered()
	if reg == nil {
		return false, fmt.Errorf("coordinator answered Register with %T", first.GetMsg())
	}
	interval := time.Duration(reg.GetHeartbeatIntervalMs()) * time.Millisecond
	if interval <= 0 {
		interval = time.Second
	}
	w.connected.Store(true)
	w.log.Info("registered with the coordinator", "heartbeat", interval)
	w.newDrainSession()
	drainSent := false
	if w.Draining() {
		w.wake() // ask this coordinator too
	}

	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			switch msg := m.GetMsg().(type) {
			case *controlpb.CoordinatorMessage_Deploy:
				w.deploy(msg.Deploy)
			case *controlpb.CoordinatorMessage_Cancel:
				w.cancelTask(msg.Cancel.GetTask())
			case *controlpb.CoordinatorMessage_TriggerCheckpoint:
				m := msg.TriggerCheckpoint
				w.checkpointCommand(m.GetTask(), task.Command{Kind: task.CmdTrigger, CheckpointID: m.GetCheckpointId(),
					Timestamp: m.GetTimestampUnixMs(), Savepoint: m.GetSavepoint(), Stop: m.GetStop()})
			case *controlpb.CoordinatorMessage_NotifyCheckpointComplete:
				m := msg.NotifyCheckpointComplete
				w.checkpointCommand(m.GetTask(), task.Command{Kind: task.CmdComplete, CheckpointID: m.GetCheckpointId(), Final: m.GetFinal()})
			case *controlpb.CoordinatorMessage_AbortCheckpoint:
				m := msg.AbortCheckpoint
				w.checkpointCommand(m.GetTask(), task.Command{Kind: task.CmdAbort, CheckpointID: m.GetCheckpointId()})
			case *controlpb.CoordinatorMessage_DrainStarted:
				w.drainStarted(msg.DrainStarted)
			default:
				w.log.Warn("ignoring unexpected coordinator message", "type", fmt.Sprintf("%T", m.GetMsg()))
			}
		}
	}()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	err = func() error {
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-recvErr:
				recvErr <- err
				return err
			case <-w.drain.leaving:
				// Flush, then half-close: the coordinator handles
				// what came before and ends the session.
				for _, m := range w.takeOutbox() {
					if err := stream.Send(m); err != nil {
						return err
					}
				}
				for _, st := range w.pendingStatuses() {
					if err := stream.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_TaskStatus{TaskStatus: st}}); err != nil {
						return err
					}
				}
				if err := stream.CloseSend(); err != nil {
					return err
				}
				t := time.NewTimer(5 * time.Second)
				defer t.Stop()
				select {
				case err := <-recvErr:
					recvErr <- err
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				case <-t.C:
					return errors.New("the coordinator did not end the session within 5s of leaving")
				case <-ctx.Done():
					return ctx.Err()
				}
			case <-w.notify:
				// Checkpoint messages first: a task's ack goes out before
				// its FINISHED status (stop with savepoint).
				for _, m := range w.takeOutbox() {
					if err := stream.Send(m); err != nil {
						return err
					}
				}
				for _, st := range w.pendingStatuses() {
					if err := stream.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_TaskStatus{TaskStatus: st}}); err != nil {
						return err
					}
				}
				if m := w.drainRequest(); m != nil && !drainSent {
					if err := stream.Send(m); err != nil {
						return err
					}
					drainSent = true
				}
				w.checkDrained()
			case <-ticker.C:
				hb := &controlpb.Heartbeat{UnixMs: time.Now().UnixMilli(), Tasks: w.allStatuses(), Memory: readMemory(w.cfg.MemoryLimit)}
				if err := stream.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Heartbeat{Heartbeat: hb}}); err != nil {
					return err
				}
				w.checkDrained()
			}
		}
	}()
	cancel()
	<-recvErr // the receive goroutine ends once the stream is cancelled
	if errors.Is(err, context.Canceled) && parent.Err() != nil {
		err = nil
	}
	return true, err
}
