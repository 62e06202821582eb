package coordinator_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/task"
)

// fakeRunner runs tasks that block until the test finishes or fails them,
// or until they are cancelled.
type fakeRunner struct {
	mu      sync.Mutex
	running map[task.ID]*fakeTask
}

type fakeTask struct {
	dep      task.Deployment
	worker   string
	end      chan error
	canceled chan struct{}
}

func newFakeRunner() *fakeRunner { return &fakeRunner{running: map[task.ID]*fakeTask{}} }

func (f *fakeRunner) run(ctx context.Context, d task.Deployment, _ worker.TaskEnv, c *dataflow.Counters) error {
	ft := &fakeTask{dep: d, worker: d.LocalWorkerID, end: make(chan error, 1), canceled: make(chan struct{})}
	f.mu.Lock()
	f.running[d.ID] = ft
	f.mu.Unlock()
	c.RecordsIn.Add(10)
	c.RecordsOut.Add(7)
	select {
	case err := <-ft.end:
		return err
	case <-ctx.Done():
		close(ft.canceled)
		return ctx.Err()
	}
}

// tasks returns the tasks of a job (any attempt).
func (f *fakeRunner) tasks(job string) []*fakeTask {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*fakeTask
	for id, t := range f.running {
		if id.JobID == job {
			out = append(out, t)
		}
	}
	return out
}

func (f *fakeRunner) task(job, vertex string, subtask int) *fakeTask {
	for _, t := range f.tasks(job) {
		if t.dep.ID.VertexID == vertex && t.dep.ID.Subtask == subtask {
			return t
		}
	}
	return nil
}

func startWorker(t *testing.T, coordAddr, id string, slots int, r *fakeRunner) *worker.Worker {
	t.Helper()
	w, err := worker.New(worker.Config{
		CoordinatorAddr: coordAddr, DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Slots: slots, ID: id, ParseSpec: fakeParse, BuildGraph: fakeBuild, RunTask: r.run,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// waitTasks waits until n tasks of the job are inside the fake runner (a
// task reports RUNNING just before the runner sees it).
func waitTasks(t *testing.T, r *fakeRunner, job string, n int) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool { return len(r.tasks(job)) == n }, "%d tasks of job %s to run", n, job)
}

func waitJob(t *testing.T, cl *api.Client, id, state string) *api.Job {
	t.Helper()
	var j *api.Job
	// A backstop: the state is an event the loop polls for, and a loaded
	// machine (load 10-16 on 2 cores) took more than 10s to get there.
	eventually(t, time.Minute, func() bool {
		var err error
		j, err = cl.Job(context.Background(), id)
		return err == nil && j.State == state
	}, "job %s to be %s (last: %+v)", id, state, &j)
	return j
}

func TestCluster(t *testing.T) {
	clk := clock.NewManual(t0)
	c := startCoordinator(t, clk)
	r := newFakeRunner()
	w1 := startWorker(t, c.GRPCAddr(), "w1", 2, r)
	w2 := startWorker(t, c.GRPCAddr(), "w2", 2, r)
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()

	t.Run("registration", func(t *testing.T) {
		eventually(t, 10*time.Second, func() bool {
			ws, err := cl.Workers(ctx)
			return err == nil && len(ws) == 2
		}, "two workers")
		ws, _ := cl.Workers(ctx)
		for i, w := range []*worker.Worker{w1, w2} {
			got := ws[i]
			if got.ID != w.ID() || got.Slots != 2 || got.SlotsUsed != 0 || got.DataAddr != w.DataAddr() || got.State != "ALIVE" || got.HTTPAddr == "" {
				t.Fatalf("worker %d: %+v", i, got)
			}
		}
		ov, _ := cl.Overview(ctx)
		if ov.Workers != 2 || ov.SlotsTotal != 4 || ov.SlotsFree != 4 {
			t.Fatalf("%+v", ov)
		}
		resp, err := http.Get("http://" + w1.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(data), "weir_worker_slots 2") || !strings.Contains(string(data), "weir_worker_connected 1") {
			t.Fatalf("worker metrics: %s", data)
		}
	})

	t.Run("deploy and finish", func(t *testing.T) {
		id, err := cl.Submit(ctx, jobSpec("ok", 2, 1))
		if err != nil {
			t.Fatal(err)
		}
		j := waitJob(t, cl, id, "RUNNING")
		waitTasks(t, r, id, 3)
		if j.Attempt != 1 || j.StartedAt == nil {
			t.Fatalf("%+v", j)
		}
		perWorker := map[string]int{}
		for _, v := range j.Vertices {
			for _, s := range v.Subtasks {
				perWorker[s.Worker]++
			}
		}
		if perWorker["w1"] == 0 || perWorker["w2"] == 0 || perWorker["w1"]+perWorker["w2"] != 3 {
			t.Fatalf("placement not spread: %v", perWorker)
		}
		ft := r.task(id, "n0", 1)
		if ft == nil {
			t.Fatal("task n0[1] not running")
		}
		if p := ft.dep.Placements; len(p["n0"]) != 2 || len(p["n1"]) != 1 || p["n1"][0].DataAddr == "" || ft.dep.ID.Attempt != 1 {
			t.Fatalf("placements %+v", p)
		}
		ov, _ := cl.Overview(ctx)
		if ov.SlotsUsed != 2 { // slot sharing: n0[0] and n1[0] share a slot
			t.Fatalf("slots used %d", ov.SlotsUsed)
		}
		for _, ft := range r.tasks(id) {
			ft.end <- nil
		}
		j = waitJob(t, cl, id, "FINISHED")
		if s := j.Vertices[0].Subtasks[0]; s.State != "FINISHED" || s.RecordsIn != 10 || s.RecordsOut != 7 {
			t.Fatalf("subtask %+v", s)
		}
		eventually(t, 5*time.Second, func() bool {
			ov, _ := cl.Overview(ctx)
			return ov.SlotsUsed == 0
		}, "slots to be released")
	})

	t.Run("failing task fails the job", func(t *testing.T) {
		id, err := cl.Submit(ctx, jobSpec("bad", 2))
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id, "RUNNING")
		waitTasks(t, r, id, 2)
		r.task(id, "n0", 0).end <- errors.New("node n0: record at offset 4: boom")
		j := waitJob(t, cl, id, "FAILED")
		if !strings.Contains(j.FailureCause, "task n0[0]") || !strings.Contains(j.FailureCause, "boom") {
			t.Fatalf("cause %q", j.FailureCause)
		}
		select {
		case <-r.task(id, "n0", 1).canceled:
		case <-time.After(5 * time.Second):
			t.Fatal("other task not cancelled")
		}
		if s := j.Vertices[0].Subtasks; s[0].State != "FAILED" || s[1].State != "CANCELED" || !strings.Contains(s[0].Error, "boom") {
			t.Fatalf("subtasks %+v", s)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		id, err := cl.Submit(ctx, jobSpec("cancel-me", 3))
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id, "RUNNING")
		if err := cl.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		j := waitJob(t, cl, id, "CANCELLED")
		for _, s := range j.Vertices[0].Subtasks {
			if s.State != "CANCELED" {
				t.Fatalf("subtask %+v", s)
			}
		}
		var ae *api.Error
		if err := cl.Cancel(ctx, id); !errors.As(err, &ae) || ae.Status != 409 {
			t.Fatalf("second cancel: %v", err)
		}
	})

	t.Run("waits for slots", func(t *testing.T) {
		id, err := cl.Submit(ctx, jobSpec("big", 5))
		if err != nil {
			t.Fatal(err)
		}
		j := waitJob(t, cl, id, "SCHEDULING")
		if !strings.Contains(j.Message, "needs 5 slots, 4 free") {
			t.Fatalf("message %q", j.Message)
		}
		if err := cl.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id, "CANCELLED")
	})

	t.Run("silent worker dropped after the timeout", func(t *testing.T) {
		conn, err := grpc.NewClient(c.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := controlpb.NewCoordinatorClient(conn).Session(sctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: &controlpb.Register{
			WorkerId: "silent", DataAddr: "127.0.0.1:1", Slots: 1}}}); err != nil {
			t.Fatal(err)
		}
		if m, err := stream.Recv(); err != nil || m.GetRegistered().GetHeartbeatIntervalMs() != 20 {
			t.Fatalf("registered: %v %v", m, err)
		}
		eventually(t, 5*time.Second, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 3 }, "silent worker registered")
		for range 6 {
			clk.Advance(time.Second)
			now := clk.Now()
			// The live workers heartbeat in real time; wait until both
			// have been seen at the new fake time.
			eventually(t, 5*time.Second, func() bool {
				ws, _ := cl.Workers(ctx)
				n := 0
				for _, w := range ws {
					if w.ID != "silent" && !w.LastHeartbeat.Before(now) {
						n++
					}
				}
				return n == 2
			}, "live workers to heartbeat")
		}
		eventually(t, 5*time.Second, func() bool {
			ws, _ := cl.Workers(ctx)
			return len(ws) == 2 && ws[0].ID == "w1" && ws[1].ID == "w2"
		}, "silent worker to be dropped")
		// The coordinator ends the silent worker's session.
		errc := make(chan error, 1)
		go func() {
			for {
				if _, err := stream.Recv(); err != nil {
					errc <- err
					return
				}
			}
		}()
		select {
		case <-errc:
		case <-time.After(5 * time.Second):
			t.Fatal("session of the dropped worker still open")
		}
	})

	t.Run("broken session drops the worker at once and fails its job", func(t *testing.T) {
		id, err := cl.Submit(ctx, jobSpec("victim", 4))
		if err != nil {
			t.Fatal(err)
		}
		waitJob(t, cl, id, "RUNNING")
		waitTasks(t, r, id, 4)
		w2.Stop() // no clock advance: the stream breaking is enough
		j := waitJob(t, cl, id, "FAILED")
		if !strings.Contains(j.FailureCause, "worker w2 lost") {
			t.Fatalf("cause %q", j.FailureCause)
		}
		ws, _ := cl.Workers(ctx)
		if len(ws) != 1 || ws[0].ID != "w1" {
			t.Fatalf("workers %+v", ws)
		}
		for _, ft := range r.tasks(id) {
			if ft.worker != "w1" {
				continue
			}
			select {
			case <-ft.canceled:
			case <-time.After(5 * time.Second):
				t.Fatal("task on w1 not cancelled")
			}
		}
		eventually(t, 5*time.Second, func() bool {
			ov, _ := cl.Overview(ctx)
			return ov.SlotsUsed == 0 && ov.SlotsTotal == 2
		}, "slots of the failed job released")
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"weir_workers 1", "weir_slots_total 2", `weir_jobs{state="FINISHED"} 1`, `weir_jobs{state="FAILED"} 2`, `weir_jobs{state="CANCELLED"} 2`} {
			if !strings.Contains(string(data), want) {
				t.Errorf("metrics lack %q", want)
			}
		}
		if !strings.Contains(string(data), `weir_job_records_in_total{job=`) {
			t.Error("no per-vertex records")
		}
	})
}
