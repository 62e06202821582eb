package coordinator_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// TestPlacementByOperators: a job naming a user operator is refused at
// submit, with the operator and the workers that lack it, when no worker
// carries it; otherwise it runs only on workers that carry it, all at one
// version, the coordinator's own first. The workers list shows each
// worker's operators.
func TestPlacementByOperators(t *testing.T) {
	if err := registry.Register(registry.Entry{
		ID: "coordtest.op", Kind: registry.KindProcess, Module: "example.com/ops", Version: "v1.0.0",
		Check: func(spec.Config) error { return nil },
		New:   func(spec.Config, *dataflow.Context) (dataflow.Operator, error) { return nil, nil },
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Unregister("coordtest.op") })
	c := startCoordinator(t, clock.Real{})
	url := "http://" + c.HTTPAddr() + "/api/v1/jobs"
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()
	jobRestart := func(name, strategy string) string {
		return "name: " + name + "\nrestart: {strategy: " + strategy + "}\npipeline:\n  - name: src\n    source: {datagen: {}}\n" +
			"  - name: proc\n    process: {operator: coordtest.op}\n"
	}
	job := func(name string) string { return jobRestart(name, "none") }
	op := func(version string) []*controlpb.Operator {
		return []*controlpb.Operator{{Id: "coordtest.op", Kind: "process", Module: "example.com/ops", Version: version}}
	}

	// No worker yet: the job may wait for one, as for slots.
	startFakeWorker(t, c.GRPCAddr(), "w1", 8)
	eventually(t, 10*time.Second, func() bool { ws, err := cl.Workers(ctx); return err == nil && len(ws) == 1 }, "w1 registered")
	resp, data := do(t, http.MethodPost, url, job("missing"))
	e := wantError(t, resp, data, http.StatusBadRequest, api.CodeInvalidSpec)
	if !strings.Contains(e.Message, "operator coordtest.op is on no worker (worker w1 lacks it)") {
		t.Fatalf("message %q", e.Message)
	}
	if len(e.Details) != 1 || e.Details[0].Path != "pipeline[1].process.operator" || e.Details[0].Message != "operator coordtest.op is on no worker; worker w1 lacks it" {
		t.Fatalf("details %+v", e.Details)
	}
	if jobs, _ := cl.Jobs(ctx); len(jobs) != 0 {
		t.Fatalf("a refused job was created: %+v", jobs)
	}

	w2 := startFakeWorkerWith(t, c.GRPCAddr(), "w2", 1, op("v1.0.0")) // one slot: a job of p=1
	w3 := startFakeWorkerWith(t, c.GRPCAddr(), "w3", 4, op("v2.0.0"))
	eventually(t, 10*time.Second, func() bool { ws, err := cl.Workers(ctx); return err == nil && len(ws) == 3 }, "three workers")
	ws, _ := cl.Workers(ctx)
	if len(ws[0].Operators) != 0 || len(ws[1].Operators) != 1 || ws[1].Operators[0] != (api.Operator{ID: "coordtest.op", Kind: "process", Module: "example.com/ops", Version: "v1.0.0"}) ||
		ws[2].Operators[0].Version != "v2.0.0" {
		t.Fatalf("workers %+v", ws)
	}

	// The coordinator's version first, though w3 has more room.
	a, err := cl.Submit(ctx, []byte(job("a")))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, a, "RUNNING")
	if n := len(w2.jobTasks(a)); n != 2 {
		t.Fatalf("job a: %d tasks on w2, want 2 (w1 lacks the operator, w3 has another version)", n)
	}
	// w2 is full: the next goes wholly to w3, never split across versions.
	b, err := cl.Submit(ctx, []byte(job("b")))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, b, "RUNNING")
	if n := len(w3.jobTasks(b)); n != 2 {
		t.Fatalf("job b: %d tasks on w3, want 2", n)
	}

	// A job accepted while its operator was on workers, restarted after
	// they are lost, waits in SCHEDULING saying why.
	c2, err := cl.Submit(ctx, []byte(jobRestart("c", "fixed, attempts: 3, delay: 0s")))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, c2, "RUNNING")
	w2.kill()
	w3.kill()
	eventually(t, 10*time.Second, func() bool {
		j, err := cl.Job(ctx, c2)
		return err == nil && j.State == "SCHEDULING" &&
			strings.HasPrefix(j.Message, "waiting for slots: operator coordtest.op is on no worker (worker w1 lacks it)")
	}, "job c waiting for a worker with coordtest.op")
}
