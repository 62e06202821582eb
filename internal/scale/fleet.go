// Package scale measures how the coordinator's costs grow with the cluster:
// a fleet of light workers, each a real control-plane Session over gRPC
// that runs nothing, and a driver that deploys jobs onto them, lets them
// heartbeat and checkpoint, and reports deploy time, checkpoint overhead
// and coordinator CPU per heartbeat and per checkpoint. tests/bench
// (section scale) runs it against a coordinator process at two sizes;
// a small run in the package's tests keeps it working.
//
// A light worker answers a deployment with RUNNING and a cancellation with
// CANCELED, and heartbeats every task it holds at the interval the
// coordinator asks for. Barriers are simulated across the fleet: the first
// TriggerCheckpoint of a checkpoint at any source subtask stands for the
// barrier reaching every subtask of the job at once, and every worker
// acknowledges the job's subtasks it holds. So whatever time a checkpoint
// takes beyond the slowest acknowledgement is the coordinator's.
package scale

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// ckptKey names one checkpoint of one job.
type ckptKey struct {
	job string
	id  int64
}

// ckptRecord is what the fleet saw of one checkpoint.
type ckptRecord struct {
	attempt  int64
	trigger  time.Time // first TriggerCheckpoint received
	lastAck  time.Time // last CheckpointAck sent
	lastNote time.Time // last NotifyCheckpointComplete received
	notified int       // subtasks notified
	tasks    int       // the job's subtasks when triggered
	held     bool      // triggered while acks were withheld
	done     bool      // every subtask notified
}

// Fleet is a set of light workers on one coordinator.
type Fleet struct {
	workers []*lightWorker

	heartbeats atomic.Int64
	// quiet pauses the heartbeats, so that a phase measures one thing.
	quiet atomic.Bool

	mu sync.Mutex
	// jobTasks counts the subtasks deployed per job (latest attempt, not
	// cancelled) over the fleet.
	jobTasks map[string]int
	running  int // subtasks reported RUNNING and not cancelled
	ckpts    map[ckptKey]*ckptRecord
	hold     bool
	held     []ckptKey
	changed  chan struct{} // closed and replaced on every change
}

// StartFleet connects n light workers with slots slots each to the
// coordinator's gRPC address and returns once all have registered.
func StartFleet(ctx context.Context, addr string, n, slots int) (*Fleet, error) {
	f := &Fleet{jobTasks: map[string]int{}, ckpts: map[ckptKey]*ckptRecord{}, changed: make(chan struct{})}
	for i := range n {
		w, err := f.connect(ctx, addr, fmt.Sprintf("light-%03d", i+1), slots)
		if err != nil {
			f.Stop()
			return nil, err
		}
		f.workers = append(f.workers, w)
	}
	return f, nil
}

// Stop breaks every session and waits for the workers' goroutines.
func (f *Fleet) Stop() {
	for _, w := range f.workers {
		w.stop()
	}
}

// Hold withholds acknowledgements: a checkpoint triggered while held stays
// in flight until Release.
func (f *Fleet) Hold() {
	f.mu.Lock()
	f.hold = true
	f.mu.Unlock()
}

// Release acknowledges the held checkpoints and every later one at once.
func (f *Fleet) Release() {
	f.mu.Lock()
	f.hold = false
	held := f.held
	f.held = nil
	f.mu.Unlock()
	for _, k := range held {
		f.barrier(k)
	}
}

// Quiet pauses (true) or resumes the heartbeats. The coordinator's
// heartbeat timeout must outlast a pause: acknowledgements count as signs
// of life, but only from workers with subtasks of the checkpointing job.
func (f *Fleet) Quiet(q bool) { f.quiet.Store(q) }

// Heartbeats is the number of heartbeats sent so far.
func (f *Fleet) Heartbeats() int64 { return f.heartbeats.Load() }

// Running is the number of subtasks the workers have reported RUNNING.
func (f *Fleet) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// wait blocks until cond (called with f.mu held) holds or ctx ends.
func (f *Fleet) wait(ctx context.Context, cond func() bool) error {
	for {
		f.mu.Lock()
		ok, ch := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Fleet) changedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// triggered records a TriggerCheckpoint and, the first time per
// checkpoint, passes the barrier to every worker (or holds it).
func (f *Fleet) triggered(t *controlpb.TriggerCheckpoint) {
	k := ckptKey{t.GetTask().GetJobId(), t.GetCheckpointId()}
	f.mu.Lock()
	if f.ckpts[k] != nil {
		f.mu.Unlock()
		return
	}
	f.ckpts[k] = &ckptRecord{attempt: t.GetTask().GetAttempt(), trigger: time.Now(), tasks: f.jobTasks[k.job], held: f.hold}
	hold := f.hold
	if hold {
		f.held = append(f.held, k)
	}
	f.changedLocked()
	f.mu.Unlock()
	if !hold {
		f.barrier(k)
	}
}

// barrier has every worker acknowledge checkpoint k for its subtasks of
// the job.
func (f *Fleet) barrier(k ckptKey) {
	f.mu.Lock()
	attempt := f.ckpts[k].attempt
	f.mu.Unlock()
	for _, w := range f.workers {
		w.ackAll(k, attempt)
	}
}

func (f *Fleet) acked(k ckptKey, at time.Time) {
	f.mu.Lock()
	if r := f.ckpts[k]; r != nil && at.After(r.lastAck) {
		r.lastAck = at
	}
	f.mu.Unlock()
}

func (f *Fleet) notified(k ckptKey) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.ckpts[k]
	if r == nil {
		return
	}
	r.notified++
	r.lastNote = now
	if r.notified >= r.tasks && !r.done {
		r.done = true
		f.changedLocked()
	}
}

// lightWorker is one control-plane session that runs nothing.
type lightWorker struct {
	f      *Fleet
	id     string
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sendMu sync.Mutex
	stream controlpb.Coordinator_SessionClient

	mu    sync.Mutex
	tasks map[string]*controlpb.TaskID // by job/vertex/subtask
}

func taskKey(id *controlpb.TaskID) string {
	return fmt.Sprintf("%s/%s/%d", id.GetJobId(), id.GetVertexId(), id.GetSubtask())
}

func (f *Fleet) connect(ctx context.Context, addr, id string, slots int) (*lightWorker, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("light worker %s: %w", id, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := controlpb.NewCoordinatorClient(conn).Session(sctx)
	if err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("light worker %s: session: %w", id, err)
	}
	w := &lightWorker{f: f, id: id, conn: conn, cancel: cancel, stream: stream, tasks: map[string]*controlpb.TaskID{}}
	if err := stream.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: &controlpb.Register{
		WorkerId: id, DataAddr: "127.0.0.1:1", Slots: int32(slots), DeployAsBefore: true}}}); err != nil {
		w.stop()
		return nil, fmt.Errorf("light worker %s: register: %w", id, err)
	}
	reg := make(chan error, 1)
	var interval time.Duration
	go func() {
		m, err := stream.Recv()
		if err == nil && m.GetRegistered() == nil {
			err = fmt.Errorf("first message is %T, not Registered", m.GetMsg())
		}
		if err == nil {
			interval = time.Duration(m.GetRegistered().GetHeartbeatIntervalMs()) * time.Millisecond
		}
		reg <- err
	}()
	select {
	case err = <-reg:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("light worker %s: register: %w", id, err)
	}
	if interval <= 0 {
		interval = time.Second
	}
	w.wg.Add(2)
	go w.recvLoop()
	go w.heartbeatLoop(sctx, interval)
	return w, nil
}

func (w *lightWorker) stop() {
	w.cancel()
	w.wg.Wait()
	w.conn.Close()
}

func (w *lightWorker) send(m *controlpb.WorkerMessage) {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	_ = w.stream.Send(m) // a broken session shows in the coordinator's view
}

func (w *lightWorker) status(id *controlpb.TaskID, st controlpb.TaskState) {
	w.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_TaskStatus{TaskStatus: &controlpb.TaskStatus{Task: id, State: st}}})
}

func (w *lightWorker) recvLoop() {
	defer w.wg.Done()
	for {
		m, err := w.stream.Recv()
		if err != nil {
			return
		}
		switch msg := m.GetMsg().(type) {
		case *controlpb.CoordinatorMessage_Deploy:
			tid := msg.Deploy.GetTask()
			k := taskKey(tid)
			w.mu.Lock()
			_, had := w.tasks[k]
			w.tasks[k] = tid
			w.mu.Unlock()
			w.status(tid, controlpb.TaskState_TASK_STATE_RUNNING)
			w.f.mu.Lock()
			if !had {
				w.f.jobTasks[tid.GetJobId()]++
				w.f.running++
			}
			w.f.changedLocked()
			w.f.mu.Unlock()
		case *controlpb.CoordinatorMessage_Cancel:
			tid := msg.Cancel.GetTask()
			k := taskKey(tid)
			w.mu.Lock()
			_, had := w.tasks[k]
			delete(w.tasks, k)
			w.mu.Unlock()
			w.status(tid, controlpb.TaskState_TASK_STATE_CANCELED)
			if had {
				w.f.mu.Lock()
				w.f.jobTasks[tid.GetJobId()]--
				w.f.running--
				w.f.changedLocked()
				w.f.mu.Unlock()
			}
		case *controlpb.CoordinatorMessage_TriggerCheckpoint:
			w.f.triggered(msg.TriggerCheckpoint)
		case *controlpb.CoordinatorMessage_NotifyCheckpointComplete:
			n := msg.NotifyCheckpointComplete
			w.f.notified(ckptKey{n.GetTask().GetJobId(), n.GetCheckpointId()})
		}
	}
}

// ackAll acknowledges checkpoint k for every subtask of the job held here.
func (w *lightWorker) ackAll(k ckptKey, attempt int64) {
	w.mu.Lock()
	var ids []*controlpb.TaskID
	for _, tid := range w.tasks {
		if tid.GetJobId() == k.job && tid.GetAttempt() == attempt {
			ids = append(ids, tid)
		}
	}
	w.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	for _, tid := range ids {
		w.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_CheckpointAck{CheckpointAck: &controlpb.CheckpointAck{
			Task: tid, CheckpointId: k.id,
			Stats: &checkpointpb.SubtaskStats{SyncMs: 0, AsyncMs: 0, Bytes: 0},
		}}})
	}
	w.f.acked(k, time.Now())
}

func (w *lightWorker) heartbeatLoop(ctx context.Context, interval time.Duration) {
	defer w.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.f.quiet.Load() {
			continue
		}
		w.mu.Lock()
		sts := make([]*controlpb.TaskStatus, 0, len(w.tasks))
		for _, tid := range w.tasks {
			sts = append(sts, &controlpb.TaskStatus{Task: tid, State: controlpb.TaskState_TASK_STATE_RUNNING,
				Metrics: &controlpb.TaskMetrics{RecordsIn: 1, RecordsOut: 1}})
		}
		w.mu.Unlock()
		w.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Heartbeat{Heartbeat: &controlpb.Heartbeat{UnixMs: time.Now().UnixMilli(), Tasks: sts}}})
		w.f.heartbeats.Add(1)
	}
}
