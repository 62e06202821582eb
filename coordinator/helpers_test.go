package coordinator_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
)

// fakeParse stands in for spec.Parse: YAML into spec.Job, with a few checks
// reported as field errors.
func fakeParse(data []byte) (*spec.Job, error) {
	var j spec.Job
	if err := yaml.Unmarshal(data, &j); err != nil {
		return nil, spec.Errors{{Path: "", Msg: err.Error()}}
	}
	var errs spec.Errors
	if j.Name == "" {
		errs = append(errs, &spec.FieldError{Path: "name", Msg: "is required"})
	}
	if len(j.Pipeline) == 0 {
		errs = append(errs, &spec.FieldError{Path: "pipeline", Msg: "needs at least one node"})
	}
	for i, n := range j.Pipeline {
		if n.Name == "" {
			errs = append(errs, &spec.FieldError{Path: fmt.Sprintf("pipeline[%d].name", i), Msg: "is required"})
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("parse: %w", errs)
	}
	if j.Parallelism == 0 {
		j.Parallelism = 1
	}
	return &j, nil
}

// fakeBuild stands in for graph.Build: one vertex per node.
func fakeBuild(j *spec.Job) (*graph.Graph, error) {
	g := &graph.Graph{Job: j, MaxParallelism: 128}
	for i := range j.Pipeline {
		n := &j.Pipeline[i]
		p := n.Parallelism
		if p == 0 {
			p = j.Parallelism
		}
		if p < 0 {
			return nil, errors.New("negative parallelism")
		}
		g.Vertices = append(g.Vertices, &graph.Vertex{ID: n.Name, Nodes: []*spec.Node{n}, Parallelism: p})
		if i > 0 {
			g.Edges = append(g.Edges, &graph.Edge{Index: i - 1, From: j.Pipeline[i-1].Name, To: n.Name, Partitioning: dataflow.Rebalance})
		}
	}
	return g, nil
}

// jobSpec is a job of one vertex per parallelism given, never restarted.
func jobSpec(name string, parallelism ...int) []byte {
	return jobSpecWith(name, "restart: {strategy: none}\n", parallelism...)
}

// jobSpecWith is a job with extra top-level YAML (checkpoint:, restart:).
func jobSpecWith(name, extra string, parallelism ...int) []byte {
	s := fmt.Sprintf("name: %s\n%spipeline:\n", name, extra)
	for i, p := range parallelism {
		s += fmt.Sprintf("  - name: n%d\n    parallelism: %d\n", i, p)
		if i == 0 {
			s += "    source: {datagen: {}}\n"
		}
	}
	return []byte(s)
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func startCoordinator(t *testing.T, clk clock.Clock, mutate ...func(*coordinator.Config)) *coordinator.Coordinator {
	t.Helper()
	cfg := coordinator.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 5 * time.Second,
		ParseSpec: fakeParse, BuildGraph: fakeBuild, Clock: clk,
		CheckpointStorage: "file://" + t.TempDir(),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	if os.Getenv("WEIR_TEST_LOG") != "" && cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	c, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
