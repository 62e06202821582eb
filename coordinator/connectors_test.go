package coordinator_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"context"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

// A registered sink connector is placed like a process operator: a job
// naming one that no worker carries is refused at submit, with the
// connector's spec path and the workers that lack it.
func TestPlacementBySinkConnector(t *testing.T) {
	if err := registry.Register(registry.Entry{
		ID: "coordtest.sink", Kind: registry.KindSink, Module: "example.com/ops", Version: "v1.0.0",
		Check: func(spec.Config) error { return nil },
		New:   func(spec.Config, *dataflow.Context) (dataflow.Operator, error) { return nil, nil },
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Unregister("coordtest.sink") })
	c := startCoordinator(t, clock.Real{})
	cl := api.NewClient("http://" + c.HTTPAddr())
	startFakeWorker(t, c.GRPCAddr(), "w1", 8)
	eventually(t, 10*time.Second, func() bool { ws, err := cl.Workers(context.Background()); return err == nil && len(ws) == 1 }, "w1 registered")
	job := "name: j\ncheckpoint: {interval: 1s}\npipeline:\n  - name: src\n    source: {datagen: {}}\n  - name: out\n    sink: {connector: coordtest.sink}\n"
	resp, data := do(t, http.MethodPost, "http://"+c.HTTPAddr()+"/api/v1/jobs", job)
	e := wantError(t, resp, data, http.StatusBadRequest, api.CodeInvalidSpec)
	if !strings.Contains(e.Message, "operator coordtest.sink is on no worker (worker w1 lacks it)") ||
		len(e.Details) != 1 || e.Details[0].Path != "pipeline[1].sink.connector" {
		t.Fatalf("error %q, details %+v", e.Message, e.Details)
	}
}
