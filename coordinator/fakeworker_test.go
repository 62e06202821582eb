package coordinator_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weir-stream/weir/checkpoint"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// fakeWorker speaks the control protocol over a real Session stream: it
// answers deployments with RUNNING and cancellations with CANCELED, records
// every message, and acknowledges checkpoints when the test says so.
type fakeWorker struct {
	t      *testing.T
	id     string
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}

	sendMu sync.Mutex
	stream controlpb.Coordinator_SessionClient

	mu       sync.Mutex
	deploys  []*controlpb.DeployTask
	cancels  []*controlpb.TaskID
	triggers []*controlpb.TriggerCheckpoint
	notifies []*controlpb.NotifyCheckpointComplete
	aborts   []*controlpb.AbortCheckpoint
	// tasks are the subtasks deployed here and not cancelled, by
	// "job/vertex/subtask", latest attempt.
	tasks map[string]*controlpb.TaskID
}

func startFakeWorker(t *testing.T, coordAddr, id string, slots int) *fakeWorker {
	t.Helper()
	return startFakeWorkerWith(t, coordAddr, id, slots, nil)
}

// startFakeWorkerWith is a fake worker whose binary carries ops.
func startFakeWorkerWith(t *testing.T, coordAddr, id string, slots int, ops []*controlpb.Operator) *fakeWorker {
	t.Helper()
	conn, err := grpc.NewClient(coordAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := controlpb.NewCoordinatorClient(conn).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fw := &fakeWorker{t: t, id: id, conn: conn, cancel: cancel, stream: stream, done: make(chan struct{}), tasks: map[string]*controlpb.TaskID{}}
	fw.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: &controlpb.Register{WorkerId: id, DataAddr: "127.0.0.1:1", Slots: int32(slots), Operators: ops}}})
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("registered: %v", err)
	}
	go fw.loop()
	t.Cleanup(fw.kill)
	return fw
}

func taskKey(id *controlpb.TaskID) string {
	return fmt.Sprintf("%s/%s/%d", id.GetJobId(), id.GetVertexId(), id.GetSubtask())
}

func (fw *fakeWorker) send(m *controlpb.WorkerMessage) {
	fw.sendMu.Lock()
	defer fw.sendMu.Unlock()
	_ = fw.stream.Send(m) // a killed worker sends nothing
}

func (fw *fakeWorker) status(id *controlpb.TaskID, st controlpb.TaskState, msg string) {
	fw.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_TaskStatus{TaskStatus: &controlpb.TaskStatus{Task: id, State: st, Error: msg}}})
}

func (fw *fakeWorker) loop() {
	defer close(fw.done)
	for {
		m, err := fw.stream.Recv()
		if err != nil {
			return
		}
		fw.mu.Lock()
		switch msg := m.GetMsg().(type) {
		case *controlpb.CoordinatorMessage_Deploy:
			fw.deploys = append(fw.deploys, msg.Deploy)
			fw.tasks[taskKey(msg.Deploy.GetTask())] = msg.Deploy.GetTask()
			fw.mu.Unlock()
			fw.status(msg.Deploy.GetTask(), controlpb.TaskState_TASK_STATE_RUNNING, "")
			continue
		case *controlpb.CoordinatorMessage_Cancel:
			fw.cancels = append(fw.cancels, msg.Cancel.GetTask())
			delete(fw.tasks, taskKey(msg.Cancel.GetTask()))
			fw.mu.Unlock()
			fw.status(msg.Cancel.GetTask(), controlpb.TaskState_TASK_STATE_CANCELED, "")
			continue
		case *controlpb.CoordinatorMessage_TriggerCheckpoint:
			fw.triggers = append(fw.triggers, msg.TriggerCheckpoint)
		case *controlpb.CoordinatorMessage_NotifyCheckpointComplete:
			fw.notifies = append(fw.notifies, msg.NotifyCheckpointComplete)
		case *controlpb.CoordinatorMessage_AbortCheckpoint:
			fw.aborts = append(fw.aborts, msg.AbortCheckpoint)
		}
		fw.mu.Unlock()
	}
}

// kill breaks the session, as a crashed worker does.
func (fw *fakeWorker) kill() {
	fw.cancel()
	<-fw.done
	fw.conn.Close()
}

// jobTasks returns the job's subtasks running here, sorted.
func (fw *fakeWorker) jobTasks(job string) []*controlpb.TaskID {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	var out []*controlpb.TaskID
	for _, id := range fw.tasks {
		if id.GetJobId() == job {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b *controlpb.TaskID) int {
		if a.GetVertexId() != b.GetVertexId() {
			if a.GetVertexId() < b.GetVertexId() {
				return -1
			}
			return 1
		}
		return int(a.GetSubtask() - b.GetSubtask())
	})
	return out
}

func (fw *fakeWorker) snapshot() (deploys []*controlpb.DeployTask, cancels []*controlpb.TaskID, triggers []*controlpb.TriggerCheckpoint,
	notifies []*controlpb.NotifyCheckpointComplete, aborts []*controlpb.AbortCheckpoint) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return slices.Clone(fw.deploys), slices.Clone(fw.cancels), slices.Clone(fw.triggers), slices.Clone(fw.notifies), slices.Clone(fw.aborts)
}

// ack writes a state file for every subtask of the job here and
// acknowledges checkpoint id (a savepoint when savepoint is set).
func (fw *fakeWorker) ack(st checkpoint.Storage, job string, id int64, savepoint bool) {
	fw.t.Helper()
	fw.ackAt(st, job, id, savepoint, false)
}

// ackAt is ack with CheckpointAck.end_of_input set to endOfInput.
func (fw *fakeWorker) ackAt(st checkpoint.Storage, job string, id int64, savepoint, endOfInput bool) {
	fw.t.Helper()
	dir := checkpoint.CheckpointDir(job, id)
	if savepoint {
		dir = checkpoint.SavepointDir(job, id)
	}
	for _, tid := range fw.jobTasks(job) {
		data := []byte(fmt.Sprintf("state of %s in %d", taskKey(tid), id))
		h, err := checkpoint.WriteState(context.Background(), st, dir, checkpoint.StateFileName(tid.GetVertexId(), int(tid.GetSubtask()), tid.GetVertexId()), data)
		if err != nil {
			fw.t.Fatalf("write state: %v", err)
		}
		fw.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_CheckpointAck{CheckpointAck: &controlpb.CheckpointAck{
			Task: tid, CheckpointId: id, EndOfInput: endOfInput,
			Operators: []*checkpointpb.OperatorState{{Node: tid.GetVertexId(), Handle: h}},
			Stats:     &checkpointpb.SubtaskStats{SyncMs: 1, AsyncMs: 2, AlignmentMs: int64(tid.GetSubtask()) + 3, Bytes: int64(len(data))},
		}}})
	}
}

func (fw *fakeWorker) decline(job string, id int64, reason string) {
	tasks := fw.jobTasks(job)
	fw.send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_CheckpointDecline{CheckpointDecline: &controlpb.CheckpointDecline{
		Task: tasks[0], CheckpointId: id, Reason: reason}}})
}

// fakeCluster is a coordinator on a Manual clock with fake workers and a
// file:// checkpoint storage in a temporary directory.
type fakeCluster struct {
	t       *testing.T
	clk     interface{ Advance(time.Duration) }
	st      checkpoint.Storage
	root    string
	workers []*fakeWorker
}

func (fc *fakeCluster) ackAll(job string, id int64, savepoint bool) {
	for _, w := range fc.workers {
		w.ack(fc.st, job, id, savepoint)
	}
}

// triggers returns the checkpoint ids triggered at the job's sources, per
// id the number of source subtasks that got it.
func (fc *fakeCluster) triggers(job string) map[int64]int {
	out := map[int64]int{}
	for _, w := range fc.workers {
		_, _, ts, _, _ := w.snapshot()
		for _, tr := range ts {
			if tr.GetTask().GetJobId() == job {
				out[tr.GetCheckpointId()]++
			}
		}
	}
	return out
}

func (fc *fakeCluster) count(job string, id int64, kind string) int {
	n := 0
	for _, w := range fc.workers {
		_, _, _, ns, as := w.snapshot()
		switch kind {
		case "notify":
			for _, m := range ns {
				if m.GetTask().GetJobId() == job && m.GetCheckpointId() == id {
					n++
				}
			}
		case "abort":
			for _, m := range as {
				if m.GetTask().GetJobId() == job && m.GetCheckpointId() == id {
					n++
				}
			}
		}
	}
	return n
}

// deploys returns every deployment of the job, over all workers.
func (fc *fakeCluster) deploys(job string) []*controlpb.DeployTask {
	var out []*controlpb.DeployTask
	for _, w := range fc.workers {
		ds, _, _, _, _ := w.snapshot()
		for _, d := range ds {
			if d.GetTask().GetJobId() == job {
				out = append(out, d)
			}
		}
	}
	return out
}

// worker returns the fake worker that runs the job's subtask.
func (fc *fakeCluster) worker(job, vertex string, subtask int) (*fakeWorker, *controlpb.TaskID) {
	for _, w := range fc.workers {
		for _, tid := range w.jobTasks(job) {
			if tid.GetVertexId() == vertex && int(tid.GetSubtask()) == subtask {
				return w, tid
			}
		}
	}
	return nil, nil
}
