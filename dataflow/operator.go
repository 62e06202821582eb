package dataflow

import (
	"context"
	"log/slog"
)

// Output receives what an operator emits. Calls are made on the task's
// goroutine; an Output is not safe for concurrent use.
type Output interface {
	// Emit sends a record to the main output. The callee does not retain r.
	Emit(r *Record) error
	// EmitSide sends a record to the named side output (for example late
	// records). Records for a tag nobody consumes are discarded.
	EmitSide(tag string, r *Record) error
	// EmitWatermark forwards a watermark downstream.
	EmitWatermark(wm int64) error
}

// Context is what a running operator may know about where it runs.
type Context struct {
	JobID          string
	JobName        string
	Node           string // node name in the spec
	Subtask        int
	Parallelism    int
	MaxParallelism int
	// KeyGroups is the range of key groups this subtask owns.
	KeyGroups KeyGroupRange
	Logger    *slog.Logger
	Metrics   *Counters
	// OnError is the node's error policy (never nil when built by a worker).
	OnError ErrorHandler
	// Attempt is the job's execution attempt; it grows with every restart.
	// Sinks put it into what they create, so a zombie of an older attempt
	// cannot touch the current attempt's output.
	Attempt int64
	// Checkpointing says the job takes periodic checkpoints and ends with a
	// final one: a sink may hold output back until a checkpoint completes.
	Checkpointing bool
	// Now is the processing time in epoch milliseconds (nil: the wall
	// clock): processing-time timers and state TTL follow it. Tests inject
	// a fake one.
	Now func() int64
}

// Operator is a transform in a task's operator chain. It is minimal on
// purpose; capabilities are opted into with the interfaces below.
type Operator interface {
	Open(ctx *Context) error
	// Process handles one record. An error fails the task (and the job)
	// unless the operator's error policy handled it.
	Process(r *Record, out Output) error
	// Close is called once, at end of stream (after the final watermark) or
	// on cancellation; it must release resources. On end of stream an
	// operator may emit its last results through out before returning.
	Close(out Output) error
}

// WatermarkHandler is implemented by operators that act on event time
// (windows). Operators without it forward watermarks unchanged.
type WatermarkHandler interface {
	// ProcessWatermark is called with the combined input watermark. The
	// operator must forward a watermark (usually wm) through out.
	ProcessWatermark(wm int64, out Output) error
}

// InputProcessor is implemented by operators that read several inputs and
// must know which one a record came from (a join: its left and right
// input). The runtime calls ProcessInput instead of Process, with the
// position of the record's input among the node's inputs (spec.Node.Inputs:
// 0 for a join's left, 1 for its right). Watermarks stay combined over
// every input (the minimum), as for any operator.
type InputProcessor interface {
	ProcessInput(input int, r *Record, out Output) error
}

// Snapshotter is implemented by operators with state. Snapshot is the
// synchronous capture on the task goroutine: it must be cheap and return data
// that later processing does not modify. Restore is called before Open's
// first record, with what Snapshot returned in an earlier run (possibly merged
// from several subtasks when the parallelism changed).
type Snapshotter interface {
	Snapshot(checkpointID int64) ([]byte, error)
	Restore(states [][]byte) error
}

// AsyncSnapshotter is implemented by operators whose state can be large
// (keyed windows): the snapshot is split into a capture at the barrier, on
// the task goroutine, that only copies what later processing changes in
// place, and an encoding that runs afterwards on another goroutine while
// records flow again. The encoding must not touch the operator; it returns
// the state and its summary (instead of SnapshotSummarizer). Its output
// must equal what Snapshot would have returned at the capture. The runtime
// prefers CaptureSnapshot to Snapshot.
type AsyncSnapshotter interface {
	Snapshotter
	CaptureSnapshot(checkpointID int64) (encode func() ([]byte, SnapshotSummary, error), err error)
}

// Aborter is implemented by operators whose Close completes pending work
// that can block (a sink flushing to a broker that does not answer). When
// the subtask fails or is cancelled the runtime calls Abort instead of
// Close: it must release resources without waiting for outside systems;
// whatever was not committed is replayed from the last checkpoint.
type Aborter interface {
	Abort()
}

// CheckpointListener is implemented by operators that act when a checkpoint
// completes (the exactly-once sink commits then).
type CheckpointListener interface {
	NotifyCheckpointComplete(ctx context.Context, checkpointID int64) error
}

// Source produces a stream. Run blocks until ctx is cancelled, the source
// ends (bounded sources), or it fails. It emits through out from its own
// goroutine; out is safe for use by that goroutine only.
type Source interface {
	Open(ctx *Context) error
	Run(ctx context.Context, out SourceOutput) error
	Close() error
}

// SourceOutput is what a source emits into. Emit blocks under backpressure.
type SourceOutput interface {
	Output
	// MarkIdle marks the whole source subtask idle (no partitions with data)
	// or active again.
	MarkIdle(idle bool) error
}

// SnapshotSummarizer is implemented by stateful operators that can describe
// their last snapshot for inspection (weir checkpoint inspect). It is called
// on the task goroutine right after Snapshot.
type SnapshotSummarizer interface {
	SnapshotSummary() SnapshotSummary
}

// SnapshotSummary describes one operator's snapshot.
type SnapshotSummary struct {
	// Keys is the number of keys in keyed state.
	Keys int64
	// Offsets are a Kafka source's next offsets.
	Offsets []PartitionOffset
	// PendingTransactions are a transactional sink's pre-committed
	// transactions that the checkpoint's completion commits.
	PendingTransactions []PendingTransaction
}

// PartitionOffset is the next offset to read from one partition.
type PartitionOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// PendingTransaction is a Kafka transaction that was pre-committed for a
// checkpoint.
type PendingTransaction struct {
	TransactionalID string
	ProducerID      int64
	Epoch           int16
	CheckpointID    int64
}
