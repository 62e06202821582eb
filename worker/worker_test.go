package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/netaddr"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/task"
)

// parse and build stand in for spec.Parse and graph.Build: "name: x" plus
// the number of subtasks of a single vertex as "parallelism: n".
func parse(data []byte) (*spec.Job, error) {
	var j spec.Job
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "name: "); ok {
			j.Name = v
		}
		if v, ok := strings.CutPrefix(line, "parallelism: "); ok {
			fmt.Sscan(v, &j.Parallelism)
		}
	}
	if j.Name == "" {
		return nil, spec.Errors{{Path: "name", Msg: "is required"}}
	}
	j.Pipeline = []spec.Node{{Name: "only"}}
	// A failed task fails the job here (no restarts), as the tests expect.
	j.Restart = &spec.Restart{Strategy: spec.RestartNone}
	return &j, nil
}

func build(j *spec.Job) (*graph.Graph, error) {
	return &graph.Graph{Job: j, Vertices: []*graph.Vertex{{ID: "only", Nodes: []*spec.Node{&j.Pipeline[0]}, Parallelism: max(j.Parallelism, 1)}}}, nil
}

func blockUntilCancelled(ctx context.Context, _ task.Deployment, _ worker.TaskEnv, _ *dataflow.Counters) error {
	<-ctx.Done()
	return ctx.Err()
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for " + what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logRecorder is a slog handler that counts messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }
func (l *logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, msg) {
			n++
		}
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := netaddr.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func startCoordinator(t *testing.T, grpcAddr string) *coordinator.Coordinator {
	t.Helper()
	c, err := coordinator.New(coordinator.Config{
		GRPCAddr: grpcAddr, HTTPAddr: "127.0.0.1:0",
		HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 5 * time.Second,
		ParseSpec: parse, BuildGraph: build, CheckpointStorage: "file://" + t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func newWorker(t *testing.T, coord string, mutate func(*worker.Config)) *worker.Worker {
	t.Helper()
	cfg := worker.Config{
		CoordinatorAddr: coord, DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Slots: 2, ID: "w1",
		ParseSpec: parse, BuildGraph: build, RunTask: blockUntilCancelled,
		ReconnectMin: 5 * time.Millisecond, ReconnectMax: 20 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

func waitJob(t *testing.T, cl *api.Client, id, state string) *api.Job {
	t.Helper()
	var j *api.Job
	eventually(t, 10*time.Second, func() bool {
		var err error
		j, err = cl.Job(context.Background(), id)
		return err == nil && j.State == state
	}, "job "+id+" to be "+state)
	return j
}

func TestConfigValidate(t *testing.T) {
	_, err := worker.New(worker.Config{Slots: -1})
	for _, want := range []string{"coordinator address", "slots"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func TestStartStop(t *testing.T) {
	w := newWorker(t, freeAddr(t), nil)
	if w.DataAddr() == "" || w.HTTPAddr() == "" {
		t.Fatal("no addresses")
	}
	if err := w.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	w.Stop()
	w.Stop()
}

// The worker starts before the coordinator, retries until it is up, and
// re-registers after a coordinator restart, cancelling its tasks.
func TestReconnect(t *testing.T) {
	addr := freeAddr(t)
	logs := &logRecorder{}
	w := newWorker(t, addr, func(cfg *worker.Config) { cfg.Logger = slog.New(logs) })
	eventually(t, 10*time.Second, func() bool { return logs.count("cannot reach the coordinator") >= 2 }, "retries to be logged")
	if w.Connected() {
		t.Fatal("connected without a coordinator")
	}
	c := startCoordinator(t, addr)
	cl := api.NewClient("http://" + c.HTTPAddr())
	eventually(t, 10*time.Second, w.Connected, "worker to register")
	id, err := cl.Submit(context.Background(), []byte("name: a\nparallelism: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")

	c.Stop()
	eventually(t, 10*time.Second, func() bool { return !w.Connected() }, "worker to notice")
	c2 := startCoordinator(t, addr)
	cl2 := api.NewClient("http://" + c2.HTTPAddr())
	eventually(t, 10*time.Second, func() bool {
		ws, err := cl2.Workers(context.Background())
		return err == nil && len(ws) == 1 && ws[0].SlotsUsed == 0
	}, "worker to re-register with free slots")
	// The old tasks were cancelled: a job using both slots runs.
	id, err = cl2.Submit(context.Background(), []byte("name: b\nparallelism: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl2, id, "RUNNING")
}

func TestDeployProblemsFailTheTask(t *testing.T) {
	c := startCoordinator(t, "127.0.0.1:0")
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()

	t.Run("worker cannot build the job", func(t *testing.T) {
		w := newWorker(t, c.GRPCAddr(), func(cfg *worker.Config) {
			cfg.ID = "nobuild"
			cfg.BuildGraph = func(*spec.Job) (*graph.Graph, error) { return nil, errors.New("no such connector") }
		})
		eventually(t, 10*time.Second, w.Connected, "register")
		id, err := cl.Submit(ctx, []byte("name: a\n"))
		if err != nil {
			t.Fatal(err)
		}
		j := waitJob(t, cl, id, "FAILED")
		if !strings.Contains(j.FailureCause, "job graph: no such connector") {
			t.Fatalf("cause %q", j.FailureCause)
		}
		w.Stop()
		eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 0 }, "worker to leave")
	})

	t.Run("panicking task", func(t *testing.T) {
		w := newWorker(t, c.GRPCAddr(), func(cfg *worker.Config) {
			cfg.ID = "panics"
			cfg.RunTask = func(context.Context, task.Deployment, worker.TaskEnv, *dataflow.Counters) error { panic("bug") }
		})
		eventually(t, 10*time.Second, w.Connected, "register")
		id, err := cl.Submit(ctx, []byte("name: p\n"))
		if err != nil {
			t.Fatal(err)
		}
		j := waitJob(t, cl, id, "FAILED")
		if !strings.Contains(j.FailureCause, "task panicked: bug") {
			t.Fatalf("cause %q", j.FailureCause)
		}
		if !w.Connected() {
			t.Fatal("worker lost its session")
		}
		w.Stop()
	})

	t.Run("finish and counters", func(t *testing.T) {
		w := newWorker(t, c.GRPCAddr(), func(cfg *worker.Config) {
			cfg.ID = "finishes"
			cfg.RunTask = func(_ context.Context, d task.Deployment, env worker.TaskEnv, cs *dataflow.Counters) error {
				if d.LocalWorkerID != "finishes" || d.Graph == nil || len(d.Placements["only"]) != 1 || env.Logger == nil {
					return fmt.Errorf("bad deployment %+v", d)
				}
				cs.RecordsIn.Add(3)
				cs.BackpressuredNs.Add(int64(2 * time.Millisecond))
				return nil
			}
		})
		eventually(t, 10*time.Second, w.Connected, "register")
		id, err := cl.Submit(ctx, []byte("name: f\n"))
		if err != nil {
			t.Fatal(err)
		}
		j := waitJob(t, cl, id, "FINISHED")
		if s := j.Vertices[0].Subtasks[0]; s.RecordsIn != 3 || s.BackpressuredMs != 2 || s.Worker != "finishes" {
			t.Fatalf("%+v", s)
		}
	})
}
