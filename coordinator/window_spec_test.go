package coordinator_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
)

// A window keyed by an earlier window's window_end (key_by: window_end)
// would name two result fields window_end: its tasks panicked on every
// start and the job restarted forever. It is refused at submit with 400
// and the window's path, and the same job with the key renamed is taken.
func TestSubmitRefusesWindowKeyNamedWindowEnd(t *testing.T) {
	c := startCoordinator(t, clock.Real{}, func(cfg *coordinator.Config) {
		cfg.ParseSpec, cfg.BuildGraph = spec.Parse, graph.Build
	})
	job := func(key string) string {
		return "name: rollup\npipeline:\n" +
			"  - source: {datagen: {}, event_time: {field: ts}}\n" +
			"  - key_by: user\n" +
			"  - {name: minute, window: {tumbling: 1m, aggregates: {n: count()}}}\n" +
			"  - key_by: " + key + "\n" +
			"  - {name: hour, window: {tumbling: 1h, aggregates: {n: sum(n)}}}\n" +
			"  - sink: {stdout: {}}\n"
	}
	url := "http://" + c.HTTPAddr() + "/api/v1/jobs"
	resp, data := do(t, http.MethodPost, url, job("window_end"))
	e := wantError(t, resp, data, http.StatusBadRequest, api.CodeInvalidSpec)
	if len(e.Details) != 1 || e.Details[0].Path != "pipeline[4].window" ||
		!strings.Contains(e.Details[0].Message, `the key field "window_end"`) {
		t.Fatalf("details %+v\nwant one at pipeline[4].window naming the key field", e.Details)
	}
	resp, data = do(t, http.MethodPost, url, job("{expr: window_end, as: minute_end}"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("renamed key: status %d: %s", resp.StatusCode, data)
	}
}
