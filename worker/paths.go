package worker

import (
	"fmt"
	"strconv"

	"github.com/weir-stream/weir/connectors/sinks"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/task"
)

// The worker checks paths again, whatever the coordinator checked: a job
// store written before the coordinator checked, or a coordinator that
// someone else runs, must not make this worker write outside its roots.

// pathBuilder refuses a file sink outside the roots before the sink opens
// anything.
type pathBuilder struct {
	task.Builder
	roots *spec.Roots
}

func (b pathBuilder) Operator(job *spec.Job, node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	if node.Sink != nil && node.Sink.File != nil {
		paths := []string{node.Sink.File.Path}
		if ctx != nil && ctx.Parallelism > 1 {
			paths = append(paths, node.Sink.File.Path+"-"+strconv.Itoa(ctx.Subtask))
		}
		for _, p := range paths {
			if err := b.roots.CheckFile(p); err != nil {
				return nil, fmt.Errorf("node %s: file sink: %w", node.Name, err)
			}
		}
	}
	op, err := b.Builder.Operator(job, node, ctx)
	if err != nil {
		return nil, err
	}
	// Where the sink really writes, should it name the file differently.
	// It opens its file in Open, so refusing now leaves nothing behind.
	if p := sinks.Path(op); p != "" {
		if err := b.roots.CheckFile(p); err != nil {
			return nil, fmt.Errorf("node %s: file sink: %w", node.Name, err)
		}
	}
	return op, nil
}

// pathStore refuses checkpoint storage outside the roots before opening it.
func pathStore(open task.OpenStoreFunc, roots *spec.Roots) task.OpenStoreFunc {
	if open == nil {
		open = task.OpenCheckpointStore
	}
	return func(uri string) (task.StateStore, error) {
		if err := roots.CheckStorage(uri); err != nil {
			return nil, err
		}
		return open(uri)
	}
}
