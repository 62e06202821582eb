package coordinator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/weir-stream/weir/connectors/kafka"
	"github.com/weir-stream/weir/connectors/kafka/devbroker"
	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
)

// TestSubmitChecksExactlyOnceTimeouts: with Config.CheckJob set to
// kafka.CheckJob (as `weir coordinator` does), a job whose exactly-once
// sink's transaction timeout cannot cover a checkpoint and a restart is
// refused with 400 and a detail naming the field and what to change; one
// that fits is accepted.
func TestSubmitChecksExactlyOnceTimeouts(t *testing.T) {
	b, err := devbroker.Start(devbroker.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := startCoordinator(t, clock.Real{}, func(cfg *coordinator.Config) {
		cfg.ParseSpec, cfg.BuildGraph, cfg.CheckJob = spec.Parse, graph.Build, kafka.CheckJob
	})
	job := func(extra string) string {
		return "name: eos\ncheckpoint: {interval: 1s}\nrestart: {strategy: none}\npipeline:\n  - source: {datagen: {}}\n" +
			"  - sink: {kafka: {brokers: ['" + b.Addr() + "'], topic: o, delivery: exactly-once" + extra + "}}\n"
	}
	url := "http://" + c.HTTPAddr() + "/api/v1/jobs"

	resp, data := do(t, http.MethodPost, url, job(", transaction_timeout: 2m"))
	e := wantError(t, resp, data, http.StatusBadRequest, api.CodeInvalidSpec)
	if len(e.Details) != 1 || e.Details[0].Path != "pipeline[1].sink.kafka.transaction_timeout" ||
		!strings.Contains(e.Details[0].Message, "raise transaction_timeout above 10m31s") {
		t.Fatalf("details %+v\nwant one at pipeline[1].sink.kafka.transaction_timeout saying to raise it above 10m31s", e.Details)
	}

	resp, data = do(t, http.MethodPost, url, job(", transaction_timeout: 1h"))
	e = wantError(t, resp, data, http.StatusBadRequest, api.CodeInvalidSpec)
	if len(e.Details) != 1 || !strings.Contains(e.Details[0].Message, "exceeds the broker's transaction.max.timeout.ms (15m0s") {
		t.Fatalf("details %+v\nwant the broker's limit", e.Details)
	}

	resp, data = do(t, http.MethodPost, url, job(""))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var sub api.Submitted
	if err := json.Unmarshal(data, &sub); err != nil || sub.ID == "" {
		t.Fatalf("submitted: %s", data)
	}
}
