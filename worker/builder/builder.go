// Package builder makes the operators of a task from spec nodes: the
// built-in transforms, the connectors, and each node's error policy.
package builder

import (
	"fmt"
	"io"

	"github.com/weir-stream/weir/connectors/datagen"
	"github.com/weir-stream/weir/connectors/kafka"
	"github.com/weir-stream/weir/connectors/sinks"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator"
)

// Builder implements task.Builder with weir's built-in operators and
// connectors.
type Builder struct{}

// New returns the built-in builder.
func New() *Builder { return &Builder{} }

// Source builds a source node.
func (b *Builder) Source(job *spec.Job, node *spec.Node, ctx *dataflow.Context) (dataflow.Source, error) {
	h, closer, err := errorHandler(job, node, ctx)
	if err != nil {
		return nil, err
	}
	ctx.OnError = h
	var src dataflow.Source
	switch {
	case node.Source == nil:
		err = fmt.Errorf("node %s is not a source", node.Name)
	case node.Source.Connector != "":
		src, err = newUserSource(node, ctx)
	case node.Source.Kafka != nil:
		src, err = kafka.NewSource(node, ctx)
	case node.Source.Datagen != nil:
		src, err = datagen.NewSource(node, ctx)
	default:
		err = fmt.Errorf("node %s: source has no connector", node.Name)
	}
	if err != nil {
		closeQuietly(closer)
		return nil, err
	}
	return src, nil
}

// Operator builds a transform or sink node.
func (b *Builder) Operator(job *spec.Job, node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	h, closer, err := errorHandler(job, node, ctx)
	if err != nil {
		return nil, err
	}
	ctx.OnError = h
	var op dataflow.Operator
	switch {
	case node.Process != nil:
		op, err = newProcess(node, ctx)
	case node.Sink == nil:
		op, err = operator.New(job, node, ctx)
	case node.Sink.Connector != "":
		op, err = newUserSink(node, ctx)
	case node.Sink.Kafka != nil:
		op, err = kafka.NewSink(node, ctx)
	case node.Sink.Stdout != nil:
		op, err = sinks.NewStdout(node, ctx)
	case node.Sink.File != nil:
		op, err = sinks.NewFile(node, ctx)
	case node.Sink.Discard != nil:
		op, err = sinks.NewDiscard(node, ctx)
	default:
		err = fmt.Errorf("node %s: sink has no connector", node.Name)
	}
	if err != nil {
		closeQuietly(closer)
		return nil, err
	}
	return op, nil
}

// errorHandler returns the node's error policy (the node's on_error, else
// the job's, else fail) and what must be closed with the operator.
func errorHandler(job *spec.Job, node *spec.Node, ctx *dataflow.Context) (dataflow.ErrorHandler, io.Closer, error) {
	p := node.OnError
	if p == nil {
		p = job.OnError
	}
	if p == nil || p.Action == "" || p.Action == spec.OnErrorFail {
		return dataflow.FailOnError{Node: node.Name}, nil, nil
	}
	switch p.Action {
	case spec.OnErrorSkip:
		return dataflow.SkipOnError{Counters: ctx.Metrics}, nil, nil
	case spec.OnErrorDeadLetter:
		h, c, err := kafka.NewDeadLetter(node.Name, p, ctx.Metrics)
		if err != nil {
			return nil, nil, err
		}
		return closingHandler{h, c}, c, nil
	}
	return nil, nil, fmt.Errorf("node %s: unknown on_error action %q", node.Name, p.Action)
}

func closeQuietly(c io.Closer) {
	if c != nil {
		_ = c.Close()
	}
}

// closingHandler is an error handler that owns a resource (the dead-letter
// producer). The task runtime closes a node's ErrorHandler after the node
// when it implements io.Closer.
type closingHandler struct {
	dataflow.ErrorHandler
	io.Closer
}
