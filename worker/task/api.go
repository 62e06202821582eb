// Package task runs one subtask of a job: its operator chain, fed either by a
// source or by an input gate over the vertex's input edges, writing to output
// writers that partition records over the downstream subtasks.
package task

import (
	"log/slog"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/exchange"
)

// ID names one subtask of one execution attempt of a job.
type ID struct {
	JobID    string
	Attempt  int64
	VertexID string
	Subtask  int
}

// Address is where a subtask runs.
type Address struct {
	WorkerID string
	DataAddr string // host:port of that worker's Exchange service
}

// Deployment is everything a worker needs to run one subtask.
type Deployment struct {
	ID    ID
	Graph *graph.Graph
	// Placements maps every subtask of the job to where it runs:
	// Placements[vertexID][subtask].
	Placements map[string][]Address
	// LocalWorkerID is the worker running this deployment; channels between
	// two subtasks on it are handed off in memory.
	LocalWorkerID string
}

// Builder makes the operators of a chain from their spec nodes. The worker
// supplies it (built-in transforms and connectors); tests supply their own.
type Builder interface {
	// Source builds a source node's Source. It may replace ctx.OnError with
	// the node's error policy; an ErrorHandler that is an io.Closer is
	// closed after the node.
	Source(job *spec.Job, node *spec.Node, ctx *dataflow.Context) (dataflow.Source, error)
	// Operator builds any other node (transforms and sinks), likewise.
	Operator(job *spec.Job, node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error)
}

// Env is what tasks share on one worker.
type Env struct {
	Builder Builder
	Logger  *slog.Logger
	// Exchange is the worker's data plane: the task registers its input
	// gate there and opens its output channels through it.
	Exchange *exchange.Exchange
}
