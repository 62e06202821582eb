package coordinator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// deployRecorder is a session that records the deployments it gets and
// registers with deploy_as_before as asked.
type deployRecorder struct {
	mu      sync.Mutex
	deploys []*controlpb.DeployTask
	bytes   int
}

func startDeployRecorder(t *testing.T, addr, id string, slots int, asBefore bool) *deployRecorder {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := controlpb.NewCoordinatorClient(conn).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: &controlpb.Register{
		WorkerId: id, DataAddr: "127.0.0.1:1", Slots: int32(slots), DeployAsBefore: asBefore}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	r := &deployRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			if d := m.GetDeploy(); d != nil {
				r.mu.Lock()
				r.deploys = append(r.deploys, d)
				r.bytes += proto.Size(d)
				r.mu.Unlock()
				_ = stream.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_TaskStatus{TaskStatus: &controlpb.TaskStatus{
					Task: d.GetTask(), State: controlpb.TaskState_TASK_STATE_RUNNING}}})
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; conn.Close() })
	return r
}

func (r *deployRecorder) snapshot() ([]*controlpb.DeployTask, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*controlpb.DeployTask(nil), r.deploys...), r.bytes
}

// A worker that registers with deploy_as_before gets a job's spec and
// placement table with its first subtask of the attempt only; a worker
// that does not gets them with every subtask. With a table in every
// deployment, deploying a job of n subtasks sent O(n²) bytes.
func TestDeployAsBefore(t *testing.T) {
	c := startCoordinator(t, clock.NewManual(t0))
	newer := startDeployRecorder(t, c.GRPCAddr(), "newer", 20, true)
	older := startDeployRecorder(t, c.GRPCAddr(), "older", 20, false)
	cl := api.NewClient("http://" + c.HTTPAddr())
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(context.Background()); return len(ws) == 2 }, "workers to register")
	const p = 20
	if _, err := cl.Submit(context.Background(), jobSpec("wide", p, p)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		a, _ := newer.snapshot()
		b, _ := older.snapshot()
		return len(a)+len(b) == 2*p
	}, "every subtask deployed")

	nd, nBytes := newer.snapshot()
	od, oBytes := older.snapshot()
	if len(nd) == 0 || len(od) == 0 {
		t.Fatalf("deployments: %d to newer, %d to older; want both used", len(nd), len(od))
	}
	for i, d := range nd {
		full := len(d.GetPlacements()) == 2*p && len(d.GetJobSpec()) > 0
		if i == 0 && (!full || d.GetAsBefore()) {
			t.Errorf("newer's first deployment: as_before %v, %d placements; want the whole table", d.GetAsBefore(), len(d.GetPlacements()))
		}
		if i > 0 && (!d.GetAsBefore() || len(d.GetPlacements()) > 0 || len(d.GetJobSpec()) > 0) {
			t.Errorf("newer's deployment %d: as_before %v, %d placements, %d spec bytes; want as_before alone", i, d.GetAsBefore(), len(d.GetPlacements()), len(d.GetJobSpec()))
		}
		if d.GetCheckpointDir() == "" {
			t.Errorf("newer's deployment %d has no checkpoint dir", i)
		}
	}
	for i, d := range od {
		if d.GetAsBefore() || len(d.GetPlacements()) != 2*p {
			t.Errorf("older's deployment %d: as_before %v, %d placements; want the whole table", i, d.GetAsBefore(), len(d.GetPlacements()))
		}
	}
	// Per deployment, the newer worker got a small fraction of the bytes.
	if per, old := nBytes/len(nd), oBytes/len(od); per*4 > old {
		t.Errorf("%d bytes per deployment to newer, %d to older; want under a quarter", per, old)
	}
}
