package sdk

import (
	"context"
	"errors"
)

// Source reads an input made of splits (Kafka: partitions; files: paths;
// shards of an API) whose read positions live in weir's checkpoints: a
// spec node `source: {connector: <id>}`. It is the split model of the
// built-in Kafka source (docs/design/0006-user-connectors.md).
//
// The lifecycle of one subtask:
//
//  1. Open, once.
//  2. Splits lists every split of the input. Every subtask must get the
//     same list in the same order: the split at index k is read by
//     subtask k mod parallelism, so the assignment needs no coordination
//     and is the same after every restart. Splits that appear later are
//     picked up when the job restarts.
//  3. Read, on its own goroutine, reads the subtask's splits, each from
//     its position (nil: from the split's start; after a restore: the
//     position of the last record before the checkpoint), and emits
//     records through out with their new positions. It returns nil when
//     ctx is cancelled, or, for a bounded input, when every split is
//     read to its end: that is the end of the input (the final watermark
//     fires every window and timer).
//  4. Close (when it implements Closer) when the subtask ends. Read's
//     context is cancelled before; a Read that ignores it is not waited
//     for.
//
// A position is opaque to weir: the bytes Read needs to continue a split
// after the last emitted record (an offset, a file offset, a cursor).
// Exactly-once output needs Read to continue from a position exactly,
// never before or after it.
//
// Event time and watermarks come from the node's event_time block, as
// for the built-in sources: per split, the largest event time seen minus
// max_out_of_orderness minus 1 ms; the subtask's watermark is the
// minimum over its splits that are not idle (no record for
// idle_timeout). A split's largest event time is in the checkpoint, so
// watermarks do not go back after a restore.
type Source[OUT any] interface {
	// Open prepares the subtask (connections). It is called before
	// Splits.
	Open(ctx *ConnectorContext) error
	// Splits returns the ids of every split of the input, in the same
	// order on every subtask. Ids must be unique and non-empty.
	Splits(ctx context.Context) ([]string, error)
	// Read reads splits and emits through out until ctx is cancelled
	// (return nil) or, for a bounded input, every split is done (return
	// nil). Any other error fails the task; the job restarts from its
	// last checkpoint and Read is called again with its positions.
	Read(ctx context.Context, splits []Split, out *SourceOutput[OUT]) error
}

// Split is one split a subtask reads and where to continue it.
type Split struct {
	// ID is the split's id, as Splits returned it.
	ID string
	// Position is where to continue: what the last SourceOutput.Emit
	// before the restored checkpoint gave for this split; nil to start at
	// the beginning of the split.
	Position []byte
}

// ErrUnknownSplit is returned by SourceOutput.Emit for a split the
// subtask was not given.
var ErrUnknownSplit = errors.New("sdk: emit for a split this subtask does not read")

// SourceOutput is where Read emits. It is safe for use by the goroutine
// that runs Read only.
type SourceOutput[OUT any] struct {
	o *sourceOp[OUT]
}

// Emit sends v, read from split, and records position as where the split
// continues after it: a checkpoint taken after Emit returns restores to
// position, one taken before it to the previous position, so v is in
// exactly one of them. position must not be changed afterwards. Emit
// blocks under backpressure and returns ctx's error once Read's context
// is cancelled.
func (s *SourceOutput[OUT]) Emit(split string, position []byte, v OUT) error {
	return s.o.emit(split, position, encode(s.o.rt, &v))
}
