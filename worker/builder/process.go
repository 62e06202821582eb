package builder

import (
	"fmt"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

// newProcess builds a process node: the user operator registered under
// its id (package sdk), which this binary must contain.
func newProcess(node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	e, ok := registry.Lookup(node.Process.Operator)
	if !ok {
		// The coordinator checked the job against its own binary: this
		// worker runs another build.
		return nil, fmt.Errorf("node %s: %s", node.Name, registry.UnknownOperator(node.Process.Operator))
	}
	op, err := e.New(node.Process.Config, ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	return op, nil
}
