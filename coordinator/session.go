package coordinator

import (
	"context"
	"fmt"
	"io"
	"time"

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
	if err := validateRegister(reg); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, kill := context.WithCancel(stream.Context())
	defer kill()
	w := &workerEntry{
		id: reg.GetWorkerId(), dataAddr: reg.GetDataAddr(), httpAddr: reg.GetHttpAddr(), version: reg.GetVersion(),
		slots: int(reg.GetSlots()), out: make(chan *controlpb.CoordinatorMessage, outboxSize), kill: kill,
		operators: reg.GetOperators(), goVersion: reg.GetGoVersion(), deployAsBefore: reg.GetDeployAsBefore(),
	}
	// Whatever the registration triggers (deployments, cancellations) is
	// queued on w.out; the send loop starts after Registered, so Registered
	// goes out first.
	if err := c.register(w, reg.GetTasks()); err != nil {
		return err
	}
	defer c.sessionEnded(w)
	if err := stream.Send(&controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Registered{Registered: &controlpb.Registered{
		WorkerId: w.id, HeartbeatIntervalMs: c.cfg.HeartbeatInterval.Milliseconds(),
	}}}); err != nil {
		return err
	}

	sendErr := make(chan error, 1)
	go func() { sendErr <- sendLoop(ctx, stream, w.out) }()
	recvErr := c.recvLoop(ctx, stream, w)
	dropped := ctx.Err() != nil && stream.Context().Err() == nil
	kill()
	if serr := <-sendErr; recvErr == nil {
		recvErr = serr
	}
	if recvErr == nil && dropped {
		return status.Error(codes.Unavailable, "the coordinator dropped this worker (heartbeat timeout or shutdown); register again")
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
			// Stamped before the message waits for the coordinator's
			// lock: a worker that talks is alive, whatever the
			// coordinator is busy with.
			if m.GetRegister() == nil {
				c.seen(w)
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

// register adds the worker to the registry and reconciles the subtasks it
// reports. A worker id whose session is alive (it heartbeated within the
// heartbeat timeout) is refused: until workers authenticate (mutual TLS),
// anyone who reaches the gRPC port could otherwise take a worker's place,
// evict it and restart its jobs. The real worker, reconnecting after a break
// the coordinator has not noticed yet, is refused the same way and retries;
// the old session ends within the heartbeat timeout, well inside the
// worker's reconnect grace, and the retry registers.
func (c *Coordinator) register(w *workerEntry, running []*controlpb.TaskStatus) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Clock.Now()
	if old := c.workers[w.id]; old != nil {
		if silent := now.Sub(c.lastSeen(old)); silent <= c.cfg.HeartbeatTimeout {
			c.log.Warn("registration refused: worker id in use by a live session", "worker", w.id,
				"data_addr", w.dataAddr, "live_data_addr", old.dataAddr, "last_heartbeat_ago", silent)
			return status.Errorf(codes.AlreadyExists, "register: worker id %q is already registered by a live session (data address %s, last heartbeat %s ago); "+
				"a worker that lost its session registers again once the coordinator has dropped it (within the heartbeat timeout, %s); "+
				"otherwise give each worker its own --id",
				w.id, old.dataAddr, silent.Round(time.Millisecond), c.cfg.HeartbeatTimeout)
		}
		// Silent past the timeout: the next tick would drop it anyway.
		c.dropWorkerLocked(w.id, "silent past the heartbeat timeout, and its id registered again")
	}
	c.session++
	w.session = c.session
	w.registeredAt, w.lastSeen = now, now
	c.putWorkerLocked(w)
	c.log.Info("worker registered", "worker", w.id, "data_addr", w.dataAddr, "http_addr", w.httpAddr, "slots", w.slots, "tasks", len(running))
	c.reconcileLocked(w.id, running)
	c.settleLocked()
	return nil
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
		if m := msg.Heartbeat.GetMemory(); m != nil {
			w.memory = m
		}
		for _, st := range msg.Heartbeat.GetTasks() {
			c.taskStatusLocked(w.id, st, true)
		}
	case *controlpb.WorkerMessage_TaskStatus:
		c.taskStatusLocked(w.id, msg.TaskStatus, true)
	case *controlpb.WorkerMessage_CheckpointAck:
		c.handleAckLocked(w, msg.CheckpointAck)
	case *controlpb.WorkerMessage_CheckpointDecline:
		c.handleDeclineLocked(w, msg.CheckpointDecline)
	case *controlpb.WorkerMessage_Drain:
		// recvLoop stamped its liveness (c.seen) as the message arrived.
		_, _ = c.drainLocked(w.id, drainReason(msg.Drain.GetReason())) // registered: it cannot fail
	case *controlpb.WorkerMessage_Register:
		return status.Error(codes.FailedPrecondition, "already registered in this session")
	default:
		return status.Error(codes.InvalidArgument, fmt.Sprintf("unknown worker message %T", m.GetMsg()))
	}
	return nil
}
