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
		if err := registry.CheckJob(&spec.Job{Pipeline: []spec.Node{*node}}); err != nil {
			return nil, fmt.Errorf("node %s: %w", node.Name, err)
		}
		return nil, fmt.Errorf("node %s: no operator %q in this weir binary", node.Name, node.Process.Operator)
	}
	op, err := e.New(node.Process.Config, ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	return op, nil
}
