package builder_test

import (
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/builder"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// A worker whose binary lacks the operator a job names fails the task
// saying so (the coordinator's binary had it).
func TestProcessNodeUnknownOperator(t *testing.T) {
	node := &spec.Node{Name: "p", Process: &spec.Process{Operator: "acme.missing"}}
	_, err := builder.New().Operator(&spec.Job{Pipeline: []spec.Node{*node}}, node, optest.Context("p"))
	if err == nil || !strings.Contains(err.Error(), `node p: no operator "acme.missing" in this weir binary`) {
		t.Fatalf("error %v", err)
	}
}

// A registered operator is built from the node's config.
func TestProcessNodeBuildsTheRegisteredOperator(t *testing.T) {
	node := &spec.Node{Name: "p", Process: &spec.Process{Operator: "example.dedup", Config: spec.Config{"ttl": "5m"}}}
	op, err := builder.New().Operator(&spec.Job{Pipeline: []spec.Node{*node}}, node, optest.Context("p"))
	if err != nil || op == nil {
		t.Fatalf("%v %v", op, err)
	}
	node.Process.Config = spec.Config{"ttl": "-5m"}
	if _, err := builder.New().Operator(&spec.Job{Pipeline: []spec.Node{*node}}, node, optest.Context("p")); err == nil || !strings.Contains(err.Error(), "ttl: must be positive") {
		t.Fatalf("bad config: %v", err)
	}
}
