package coordinator_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// register opens a session, sends reg and returns what the coordinator
// answered: Registered, or the error that ended the session.
func register(t *testing.T, addr string, reg *controlpb.Register) (*controlpb.Registered, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); conn.Close() })
	s, err := controlpb.NewCoordinatorClient(conn).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: reg}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil {
		return nil, err
	}
	return m.GetRegistered(), nil
}

// A second registration with the id of a worker whose session is alive is
// refused: the live worker keeps its subtasks and its job keeps running
// (before, the newcomer evicted it and the job restarted onto the
// newcomer). Once the real worker's session has ended, the id registers
// again.
func TestRegisterRefusesLiveWorkerID(t *testing.T) {
	fc, c, cl, _ := newFakeCluster(t, 1)
	real := fc.workers[0]
	id, err := cl.Submit(context.Background(), jobSpec("held", 2))
	if err != nil {
		t.Fatal(err)
	}
	before := waitJob(t, cl, id, "RUNNING")

	_, err = register(t, c.GRPCAddr(), &controlpb.Register{WorkerId: real.id, DataAddr: "10.0.0.66:7000", Slots: 2})
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), `worker id "aw" is already registered by a live session`) {
		t.Fatalf("rogue registration: %v, want AlreadyExists naming the worker id", err)
	}
	ws, err := cl.Workers(context.Background())
	if err != nil || len(ws) != 1 || ws[0].DataAddr != "127.0.0.1:1" || ws[0].SlotsUsed != 2 {
		t.Fatalf("workers after the refused registration: %+v, %v", ws, err)
	}
	after := waitJob(t, cl, id, "RUNNING")
	if after.Attempt != before.Attempt || after.Restarts != 0 {
		t.Fatalf("job restarted: attempt %d -> %d, restarts %d", before.Attempt, after.Attempt, after.Restarts)
	}
	if _, cancels, _, _, _ := real.snapshot(); len(cancels) != 0 || len(real.jobTasks(id)) != 2 {
		t.Fatalf("live worker lost its subtasks: cancels %v, tasks %v", cancels, real.jobTasks(id))
	}

	// The legitimate case: the worker's session breaks and it registers
	// again with the same id.
	real.kill()
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(context.Background()); return len(ws) == 0 }, "the broken session to be dropped")
	again := startFakeWorker(t, c.GRPCAddr(), real.id, 2)
	fc.workers[0] = again
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(context.Background()); return len(ws) == 1 }, "the worker to register again")
}

// Registrations with fields no worker sends are refused, naming the field:
// above all a slot count that would claim every subtask of every job.
func TestRegisterValidatesFields(t *testing.T) {
	c := startCoordinator(t, clock.NewManual(t0))
	ok := func() *controlpb.Register {
		return &controlpb.Register{WorkerId: "w", DataAddr: "10.0.0.1:7000", HttpAddr: "10.0.0.1:8000", Slots: 4}
	}
	tests := []struct {
		name   string
		mutate func(*controlpb.Register)
		want   string
	}{
		{"max int32 slots", func(r *controlpb.Register) { r.Slots = math.MaxInt32 }, "slots is 2147483647, must be 1 to 1024"},
		{"one slot too many", func(r *controlpb.Register) { r.Slots = coordinator.MaxWorkerSlots + 1 }, "slots is 1025, must be 1 to 1024"},
		{"negative slots", func(r *controlpb.Register) { r.Slots = -3 }, "slots is -3"},
		{"empty id", func(r *controlpb.Register) { r.WorkerId = "" }, "worker_id is required"},
		{"id with a space", func(r *controlpb.Register) { r.WorkerId = "a b" }, `worker_id "a b" has a space`},
		{"id with a newline", func(r *controlpb.Register) { r.WorkerId = "a\nb" }, "worker_id"},
		{"long id", func(r *controlpb.Register) { r.WorkerId = strings.Repeat("x", 300) }, "worker_id is 300 bytes, at most 256"},
		{"no data address", func(r *controlpb.Register) { r.DataAddr = "" }, "data_addr is required"},
		{"data address without port", func(r *controlpb.Register) { r.DataAddr = "10.0.0.1" }, `data_addr "10.0.0.1" is not host:port`},
		{"data address without host", func(r *controlpb.Register) { r.DataAddr = ":7000" }, "has no usable host"},
		{"data address port 0", func(r *controlpb.Register) { r.DataAddr = "h:0" }, "port must be 1 to 65535"},
		{"data address port too big", func(r *controlpb.Register) { r.DataAddr = "h:70000" }, "port must be 1 to 65535"},
		{"bad http address", func(r *controlpb.Register) { r.HttpAddr = "nonsense" }, "http_addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := ok()
			tt.mutate(reg)
			_, err := register(t, c.GRPCAddr(), reg)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want InvalidArgument with %q", err, tt.want)
			}
		})
	}
	t.Run("several problems at once", func(t *testing.T) {
		_, err := register(t, c.GRPCAddr(), &controlpb.Register{WorkerId: "w", Slots: 5000})
		if !strings.Contains(err.Error(), "slots is 5000") || !strings.Contains(err.Error(), "data_addr is required") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("largest slot count", func(t *testing.T) {
		reg := ok()
		reg.Slots = coordinator.MaxWorkerSlots
		if _, err := register(t, c.GRPCAddr(), reg); err != nil {
			t.Fatal(err)
		}
		cl := api.NewClient("http://" + c.HTTPAddr())
		eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(context.Background()); return len(ws) == 1 && ws[0].Slots == 1024 }, "the worker to be listed")
	})
}
