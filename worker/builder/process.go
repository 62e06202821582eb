package builder

import (
	"fmt"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

// registered looks up the component a node names (package sdk: a process
// operator or a source or sink connector), which this binary must
// contain, and checks it is of the node's kind.
func registered(node *spec.Node, kind registry.Kind, id string) (registry.Entry, error) {
	e, ok := registry.Lookup(id)
	if !ok {
		// The coordinator checked the job against its own binary: this
		// worker runs another build.
		return e, fmt.Errorf("node %s: %s", node.Name, registry.UnknownOperator(id))
	}
	if e.Kind != kind {
		return e, fmt.Errorf("node %s: %s is a %s, not a %s", node.Name, id, e.Kind, kind)
	}
	return e, nil
}

// newProcess builds a process node.
func newProcess(node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	e, err := registered(node, registry.KindProcess, node.Process.Operator)
	if err != nil {
		return nil, err
	}
	op, err := e.New(node.Process.Config, ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	return op, nil
}

// newUserSink builds a sink node that names a registered connector.
func newUserSink(node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	e, err := registered(node, registry.KindSink, node.Sink.Connector)
	if err != nil {
		return nil, err
	}
	op, err := e.New(node.Sink.Config, ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	return op, nil
}

// newUserSource builds a source node that names a registered connector.
func newUserSource(node *spec.Node, ctx *dataflow.Context) (dataflow.Source, error) {
	e, err := registered(node, registry.KindSource, node.Source.Connector)
	if err != nil {
		return nil, err
	}
	src, err := e.NewSource(node.Source, ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	return src, nil
}
