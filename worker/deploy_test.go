package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/task"
)

// deployAndWait deploys d through the fake coordinator and returns the
// first status of d's subtask that is not DEPLOYING.
func deployAndWait(t *testing.T, coord *fakeCoordinator, d *controlpb.DeployTask) *controlpb.TaskStatus {
	t.Helper()
	coord.out <- &controlpb.CoordinatorMessage{Msg: &controlpb.CoordinatorMessage_Deploy{Deploy: d}}
	same := func(st *controlpb.TaskStatus) bool {
		return proto.Equal(st.GetTask(), d.GetTask()) && st.GetState() != controlpb.TaskState_TASK_STATE_DEPLOYING
	}
	m := coord.next(t, func(m *controlpb.WorkerMessage) bool {
		return same(m.GetTaskStatus()) || slices.ContainsFunc(m.GetHeartbeat().GetTasks(), same)
	})
	if st := m.GetTaskStatus(); st != nil {
		return st
	}
	i := slices.IndexFunc(m.GetHeartbeat().GetTasks(), same)
	return m.GetHeartbeat().GetTasks()[i]
}

// A deployment the worker cannot run as given fails with its reason, as
// a FAILED status, instead of running: before, a subtask placed on another
// worker (or at another data address) ran and reported RUNNING while its
// input went elsewhere, so its job sat RUNNING with zero records.
func TestDeploymentsItCannotRunFail(t *testing.T) {
	coord, addr := startFakeCoordinator(t)
	w := newWorker(t, addr, nil) // id w1, the fake runner blocks until cancelled
	eventually(t, 10*time.Second, w.Connected, "register")
	here := w.DataAddr()
	place := func(sub int32, worker, data string) *controlpb.Placement {
		return &controlpb.Placement{VertexId: "only", Subtask: sub, WorkerId: worker, DataAddr: data}
	}
	tests := []struct {
		name       string
		spec       string
		vertex     string
		placements []*controlpb.Placement
		want       string
	}{
		{"placed on another worker", "name: a\n", "only", []*controlpb.Placement{place(0, "w2", "127.0.0.1:9")},
			`deployment places only[0] on worker "w2", but this is worker "w1"`},
		{"placed at another data address", "name: a\n", "only", []*controlpb.Placement{place(0, "w1", "127.0.0.1:9")},
			`deployment places only[0] at data address 127.0.0.1:9, but worker "w1" listens at ` + here},
		{"own subtask not placed", "name: a\n", "only", nil, "deployment of only[0] has no placement for that subtask"},
		{"another subtask not placed", "name: a\nparallelism: 2\n", "only", []*controlpb.Placement{place(0, "w1", here)},
			"deployment of only[0] places only[1] on no worker"},
		{"peer without a data address", "name: a\nparallelism: 2\n", "only", []*controlpb.Placement{place(0, "w1", here), place(1, "w2", "")},
			`places only[1] on worker "w2" with no data address`},
		{"unknown vertex", "name: a\n", "nope", []*controlpb.Placement{place(0, "w1", here)}, `job graph has no vertex "nope"`},
		{"spec that does not parse", "parallelism: 1\n", "only", []*controlpb.Placement{place(0, "w1", here)}, "job spec: name: is required"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := &controlpb.TaskID{JobId: fmt.Sprintf("job%d", i), Attempt: 1, VertexId: tt.vertex}
			st := deployAndWait(t, coord, &controlpb.DeployTask{Task: id, JobSpec: []byte(tt.spec), Placements: tt.placements})
			if st.GetState() != controlpb.TaskState_TASK_STATE_FAILED || !strings.Contains(st.GetError(), tt.want) {
				t.Fatalf("status %s %q, want FAILED with %q", st.GetState(), st.GetError(), tt.want)
			}
		})
	}

	t.Run("repeated deployment runs once", func(t *testing.T) {
		var mu sync.Mutex
		runs := 0
		coord2, addr2 := startFakeCoordinator(t)
		w2 := newWorker(t, addr2, func(cfg *worker.Config) {
			cfg.ID = "w1" // the fake coordinator answers as w1
			cfg.RunTask = func(ctx context.Context, d task.Deployment, env worker.TaskEnv, c *dataflow.Counters) error {
				mu.Lock()
				runs++
				mu.Unlock()
				return blockUntilCancelled(ctx, d, env, c)
			}
		})
		eventually(t, 10*time.Second, w2.Connected, "register")
		id := &controlpb.TaskID{JobId: "rep", Attempt: 1, VertexId: "only"}
		d := &controlpb.DeployTask{Task: id, JobSpec: []byte("name: r\n"), Placements: []*controlpb.Placement{
			{VertexId: "only", WorkerId: "w1", DataAddr: w2.DataAddr()}}}
		if st := deployAndWait(t, coord2, d); st.GetState() != controlpb.TaskState_TASK_STATE_RUNNING {
			t.Fatalf("first deployment: %v", st)
		}
		// The repeat is answered with the subtask's status again.
		if st := deployAndWait(t, coord2, d); st.GetState() != controlpb.TaskState_TASK_STATE_RUNNING {
			t.Fatalf("repeated deployment: %v", st)
		}
		w2.Stop()
		mu.Lock()
		defer mu.Unlock()
		if runs != 1 {
			t.Fatalf("the subtask ran %d times", runs)
		}
	})
}

// The worker refuses a slot count or an id the coordinator would refuse,
// at start rather than in a retry loop.
func TestRegistrationFieldsBounded(t *testing.T) {
	if worker.MaxSlots != coordinator.MaxWorkerSlots {
		t.Fatalf("worker.MaxSlots %d, coordinator.MaxWorkerSlots %d", worker.MaxSlots, coordinator.MaxWorkerSlots)
	}
	_, err := worker.New(worker.Config{CoordinatorAddr: "127.0.0.1:1", Slots: worker.MaxSlots + 1})
	if err == nil || !strings.Contains(err.Error(), "slots must be 1 to 1024, got 1025") {
		t.Fatalf("err %v", err)
	}
	_, err = worker.New(worker.Config{CoordinatorAddr: "127.0.0.1:1", ID: "my worker"})
	if err == nil || !strings.Contains(err.Error(), `id "my worker" must be at most 256 bytes with no space`) {
		t.Fatalf("err %v", err)
	}
}

// Two workers started with the same id: the second is refused while the
// first's session is alive, and the first keeps its subtasks (before, the
// second evicted it and the job restarted onto the newcomer). Once the
// first has stopped, the second registers.
func TestDuplicateWorkerIDRefused(t *testing.T) {
	c := startCoordinator(t, "127.0.0.1:0")
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()
	first := newWorker(t, c.GRPCAddr(), nil)
	eventually(t, 10*time.Second, first.Connected, "the first worker to register")
	id, err := cl.Submit(ctx, []byte("name: a\nparallelism: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	before := waitJob(t, cl, id, "RUNNING")

	logs := &logRecorder{}
	second := newWorker(t, c.GRPCAddr(), func(cfg *worker.Config) { cfg.Logger = slog.New(logs) })
	eventually(t, 10*time.Second, func() bool { return logs.count("the coordinator refused the registration; retrying") >= 2 },
		"the second worker to be refused")
	if second.Connected() {
		t.Fatal("the second worker registered while the first is alive")
	}
	ws, err := cl.Workers(ctx)
	if err != nil || len(ws) != 1 || ws[0].DataAddr != first.DataAddr() {
		t.Fatalf("workers %+v, %v", ws, err)
	}
	if j := waitJob(t, cl, id, "RUNNING"); j.Attempt != before.Attempt {
		t.Fatalf("the job restarted: attempt %d -> %d", before.Attempt, j.Attempt)
	}

	first.Stop()
	eventually(t, 10*time.Second, second.Connected, "the second worker to register once the first is gone")
}

// With slot sharing a slot holds one subtask of each vertex of a job (the
// job's slot group i), so a 2-slot worker runs subtasks 0 and 1 of two
// vertices and refuses a third subtask index. Before, its check counted
// subtasks and refused the third of the four.
func TestSlotHoldsOneSubtaskOfEachVertex(t *testing.T) {
	coord, addr := startFakeCoordinator(t)
	w := newWorker(t, addr, func(cfg *worker.Config) {
		cfg.BuildGraph = func(j *spec.Job) (*graph.Graph, error) {
			j.Pipeline = []spec.Node{{Name: "a"}, {Name: "b"}}
			return &graph.Graph{Job: j, Vertices: []*graph.Vertex{
				{ID: "a", Nodes: []*spec.Node{&j.Pipeline[0]}, Parallelism: 3},
				{ID: "b", Nodes: []*spec.Node{&j.Pipeline[1]}, Parallelism: 3},
			}}, nil
		}
	})
	eventually(t, 10*time.Second, w.Connected, "register")
	var places []*controlpb.Placement
	for _, v := range []string{"a", "b"} {
		for i := int32(0); i < 3; i++ {
			places = append(places, &controlpb.Placement{VertexId: v, Subtask: i, WorkerId: "w1", DataAddr: w.DataAddr()})
		}
	}
	deploy := func(job, v string, sub int32) *controlpb.TaskStatus {
		return deployAndWait(t, coord, &controlpb.DeployTask{
			Task:    &controlpb.TaskID{JobId: job, Attempt: 1, VertexId: v, Subtask: sub},
			JobSpec: []byte("name: s\n"), Placements: places})
	}
	for _, d := range []struct {
		v   string
		sub int32
	}{{"a", 0}, {"b", 0}, {"a", 1}, {"b", 1}} {
		if st := deploy("j", d.v, d.sub); st.GetState() != controlpb.TaskState_TASK_STATE_RUNNING {
			t.Fatalf("%s[%d]: %s %q, want RUNNING", d.v, d.sub, st.GetState(), st.GetError())
		}
	}
	for _, d := range []struct {
		job string
		sub int32
	}{{"j", 2}, {"other", 0}} {
		st := deploy(d.job, "a", d.sub)
		if st.GetState() != controlpb.TaskState_TASK_STATE_FAILED || !strings.Contains(st.GetError(), "no free slot") {
			t.Fatalf("%s a[%d]: %s %q, want FAILED for want of a slot", d.job, d.sub, st.GetState(), st.GetError())
		}
	}
}

// A DeployTask.as_before takes the spec and placements of the job's last
// full deployment of the same attempt on the session; one with no such
// deployment fails with the reason rather than running without them.
func TestDeployAsBefore(t *testing.T) {
	coord, addr := startFakeCoordinator(t)
	w := newWorker(t, addr, func(cfg *worker.Config) {
		cfg.Slots = 4
		cfg.BuildGraph = func(j *spec.Job) (*graph.Graph, error) {
			j.Pipeline = []spec.Node{{Name: "a"}, {Name: "b"}}
			return &graph.Graph{Job: j, Vertices: []*graph.Vertex{
				{ID: "a", Nodes: []*spec.Node{&j.Pipeline[0]}, Parallelism: 2},
				{ID: "b", Nodes: []*spec.Node{&j.Pipeline[1]}, Parallelism: 2},
			}}, nil
		}
	})
	eventually(t, 10*time.Second, w.Connected, "register")
	var places []*controlpb.Placement
	for _, v := range []string{"a", "b"} {
		for i := int32(0); i < 2; i++ {
			places = append(places, &controlpb.Placement{VertexId: v, Subtask: i, WorkerId: "w1", DataAddr: w.DataAddr()})
		}
	}
	id := func(job string, attempt int64, v string, sub int32) *controlpb.TaskID {
		return &controlpb.TaskID{JobId: job, Attempt: attempt, VertexId: v, Subtask: sub}
	}
	if st := deployAndWait(t, coord, &controlpb.DeployTask{Task: id("j", 1, "a", 0), JobSpec: []byte("name: s\n"), Placements: places}); st.GetState() != controlpb.TaskState_TASK_STATE_RUNNING {
		t.Fatalf("full deployment: %s %q", st.GetState(), st.GetError())
	}
	for _, d := range []struct {
		v   string
		sub int32
	}{{"b", 0}, {"a", 1}, {"b", 1}} {
		if st := deployAndWait(t, coord, &controlpb.DeployTask{Task: id("j", 1, d.v, d.sub), AsBefore: true}); st.GetState() != controlpb.TaskState_TASK_STATE_RUNNING {
			t.Fatalf("%s[%d] as before: %s %q, want RUNNING", d.v, d.sub, st.GetState(), st.GetError())
		}
	}
	for _, tid := range []*controlpb.TaskID{id("other", 1, "a", 0), id("j", 2, "a", 0)} {
		st := deployAndWait(t, coord, &controlpb.DeployTask{Task: tid, AsBefore: true})
		if st.GetState() != controlpb.TaskState_TASK_STATE_FAILED || !strings.Contains(st.GetError(), "refers to an earlier deployment of the attempt") {
			t.Fatalf("job %s attempt %d as before: %s %q, want FAILED naming the missing deployment", tid.GetJobId(), tid.GetAttempt(), st.GetState(), st.GetError())
		}
	}
}
