package coordinator

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

type sessionServer struct {
	controlpb.UnimplementedCoordinatorServer
	c *Coordinator
}

// Session serves one worker for as long as its stream lives: the first
// message must be Register; the stream breaking is the worker's loss.
func (s *sessionServer) Session(stream controlpb.Coordinator_SessionServer) error {
	c := s.c
	if !c.enter() {
		return status.Error(codes.Unavailable, "coordinator is shutting down")
	}
	defer c.wg.Done()

	first, err := stream.Recv()
	if err != nil {
		return err
	}
	reg := first.GetRegister()
	if reg == nil {
		return status.Error(codes.FailedPrecondition, "the first message of a session must be Register")
	}
	if reg.GetWorkerId() == "" || reg.GetSlots() <= 0 || reg.GetDataAddr() == "" {
		return status.Errorf(codes.InvalidArgument, "register: worker_id, data_addr and a positive slots count are required (got id %q, data_addr %q, slots %d)",
			reg.GetWorkerId(), reg.GetDataAddr(), reg.GetSlots())
	}
	ctx, kill := context.WithCancel(stream.Context())
	defer kill()
	w := &workerEntry{
		id: reg.GetWorkerId(), dataAddr: reg.GetDataAddr(), httpAddr: reg.GetHttpAddr(), version: reg.GetVersion(),
		slots: int(reg.GetSlots()), out: make(chan *controlpb.CoordinatorMessage, outboxSize), kill: kill,
		operators: reg.GetOperators(), goVersion: reg.GetGoVersion(),
	}
	// Registered goes out before anything the registration may trigger
	// (deployments): the send loop only starts after it.
	if err := stream.Send(&controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Registered{Registered: &controlpb.Registered{
		WorkerId: w.id, HeartbeatIntervalMs: c.cfg.HeartbeatInterval.Milliseconds(),
	}}}); err != nil {
		return err
	}
	c.register(w, reg.GetTasks())
	defer c.sessionEnded(w)

	sendErr := make(chan error, 1)
	go func() { sendErr <- sendLoop(ctx, stream, w.out) }()
	recvErr := c.recvLoop(ctx, stream, w)
	dropped := ctx.Err() != nil && stream.Context().Err() == nil
	kill()
	if serr := <-sendErr; recvErr == nil {
		recvErr = serr
	}
	if recvErr == nil && dropped {
		return status.Error(codes.Unavailable, "the coordinator dropped this worker (heartbeat timeout, re-registration or shutdown); register again")
	}
	return recvErr
}

func sendLoop(ctx context.Context, stream controlpb.Coordinator_SessionServer, out <-chan *controlpb.CoordinatorMessage) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-out:
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
}

// recvLoop runs until the stream breaks or the session is killed.
func (c *Coordinator) recvLoop(ctx context.Context, stream controlpb.Coordinator_SessionServer, w *workerEntry) error {
	msgs := make(chan *controlpb.WorkerMessage)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				errc <- nil
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			// Recv returns once the handler returns and gRPC cancels the
			// stream; the goroutine above then exits on its own.
			return nil
		case err := <-errc:
			if err == io.EOF {
				return nil
			}
			return err
		case m := <-msgs:
			if err := c.handleWorkerMessage(w, m); err != nil {
				return err
			}
		}
	}
}

func (c *Coordinator) register(w *workerEntry, running []*controlpb.TaskStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.session++
	w.session = c.session
	now := c.cfg.Clock.Now()
	w.registeredAt, w.lastSeen = now, now
	if old := c.workers[w.id]; old != nil {
		// The same worker reconnected before its old session was noticed
		// broken: whatever it ran is gone.
		c.dropWorkerLocked(w.id, "re-registered with a new session")
	}
	c.workers[w.id] = w
	c.log.Info("worker registered", "worker", w.id, "data_addr", w.dataAddr, "http_addr", w.httpAddr, "slots", w.slots, "tasks", len(running))
	c.reconcileLocked(w.id, running)
	c.settleLocked()
}

// sessionEnded drops the worker at once unless a newer session replaced it.
func (c *Coordinator) sessionEnded(w *workerEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.workers[w.id]; cur != nil && cur.session == w.session {
		c.lost = append(c.lost, lostWorker{w.id, "session closed"})
		c.settleLocked()
	}
}

func (c *Coordinator) handleWorkerMessage(w *workerEntry, m *controlpb.WorkerMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.workers[w.id]; cur == nil || cur.session != w.session {
		return status.Error(codes.FailedPrecondition, "session is no longer current")
	}
	switch msg := m.GetMsg().(type) {
	case *controlpb.WorkerMessage_Heartbeat:
		w.lastSeen = c.cfg.Clock.Now()
		for _, st := range msg.Heartbeat.GetTasks() {
			c.taskStatusLocked(w.id, st, true)
		}
	case *controlpb.WorkerMessage_TaskStatus:
		w.lastSeen = c.cfg.Clock.Now()
		c.taskStatusLocked(w.id, msg.TaskStatus, true)
	case *controlpb.WorkerMessage_CheckpointAck:
		w.lastSeen = c.cfg.Clock.Now()
		c.handleAckLocked(w, msg.CheckpointAck)
	case *controlpb.WorkerMessage_CheckpointDecline:
		w.lastSeen = c.cfg.Clock.Now()
		c.handleDeclineLocked(w, msg.CheckpointDecline)
	case *controlpb.WorkerMessage_Register:
		return status.Error(codes.FailedPrecondition, "already registered in this session")
	default:
		return status.Error(codes.InvalidArgument, fmt.Sprintf("unknown worker message %T", m.GetMsg()))
	}
	return nil
}
