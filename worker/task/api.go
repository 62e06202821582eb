// Package task runs one subtask of a job: its operator chain, fed either by a
// source or by an input gate over the vertex's input edges, writing to output
// writers that partition records over the downstream subtasks.
//
// It carries out the subtask's side of the checkpoint protocol
// (checkpoint/doc.go):
//
//   - Restore: with Deployment.Restore set, Run reads the _metadata, picks
//     each stateful node's files (only its own subtask's when the
//     parallelism is unchanged, every subtask's otherwise; matched by node
//     name, so a savepoint of another job restores too), checks them and
//     calls Restore before anything is opened. A missing or corrupt file
//     fails Run with an error wrapping checkpoint.ErrCorrupt that names it.
//   - Sources: the worker posts TriggerCheckpoint into Deployment.Control. A
//     control goroutine takes the source's checkpoint lock (held around
//     every Emit, EmitWatermark and MarkIdle, see sourceOutput), snapshots
//     the source and the chain, broadcasts the barrier and lets go: the
//     barrier falls between two records, also when the source is idle.
//     With stop, the source emits nothing more until the savepoint
//     completes (then its Run is cancelled and the subtask finishes) or is
//     aborted (then it resumes). Subtasks that took a stop barrier finish
//     without the final watermark (Flink's stop without drain: windows fire
//     after a restore, not twice).
//   - Other subtasks align barriers on their input gate (exactly_once, the
//     default: channels that delivered barrier n are blocked until all have;
//     at_least_once: nothing blocks), then snapshot the chain on the task
//     goroutine, forward the barrier and unblock.
//   - The capture is persisted by one goroutine per checkpoint (at most
//     Env.MaxUploads at a time per task, newer ones are declined), which
//     acknowledges or declines through Env.Reporter. A cancelled task
//     abandons its uploads; a finished one waits for them.
//   - NotifyCheckpointComplete reaches every CheckpointListener of the chain
//     on the task goroutine (under the source lock for sources); an error
//     fails the task. AbortCheckpoint drops the upload or the alignment.
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
	// CheckpointDir is the URI of the job's checkpoint directory
	// (<root>/<job-id>); state files go under it. Empty: checkpoints are
	// declined.
	CheckpointDir string
	// Restore, when set, is the checkpoint or savepoint the chain's state
	// is restored from before the first record.
	Restore *RestorePoint
	// Control delivers the coordinator's checkpoint commands to the task;
	// nil: none arrive.
	Control *Control
}

// RestorePoint names a completed checkpoint or savepoint.
type RestorePoint struct {
	CheckpointID int64
	// MetadataURI is the URI of its _metadata file.
	MetadataURI string
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
	// Reporter receives checkpoint acks and declines; nil drops them.
	Reporter Reporter
	// OpenStore opens checkpoint storage by URI; nil: checkpoint.OpenStorage.
	OpenStore OpenStoreFunc
	// MaxUploads bounds a task's checkpoint uploads in flight (default 2);
	// a checkpoint beyond it is declined.
	MaxUploads int
	// Running, when set, is called once: the subtask's state is restored
	// and its operators are open.
	Running func()
	// InputEnded, when set, is called once by a source subtask that has
	// reached the end of its input and waits for the final checkpoint.
	InputEnded func()
	// Now is the processing time in epoch ms for processing-time timers
	// (nil: the wall clock); operators see it as dataflow.Context.Now.
	Now func() int64
}
