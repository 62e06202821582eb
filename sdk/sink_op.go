package sdk

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/internal/twophase"
)

// Timeouts of the sink's calls that have no deadline of their own.
const (
	sinkRecoverTimeout = 2 * time.Minute
	sinkCallTimeout    = 60 * time.Second
	sinkAbortTimeout   = 10 * time.Second
)

// sinkOp runs a TransactionalSink as a weir operator over the two-phase
// commit driver the exactly-once Kafka sink runs on: it is the driver's
// Participant (committables JSON-encoded in the subtask's state).
type sinkOp[IN, TXN any] struct {
	core
	sink  TransactionalSink[IN, TXN]
	in    decoder[IN]
	tp    *twophase.Driver[TXN]
	onErr dataflow.ErrorHandler

	owned  []int // the old subtasks whose leftovers this subtask owns
	closed bool
}

var (
	_ dataflow.Operator           = (*sinkOp[Record, int])(nil)
	_ dataflow.Snapshotter        = (*sinkOp[Record, int])(nil)
	_ dataflow.CheckpointListener = (*sinkOp[Record, int])(nil)
	_ dataflow.WatermarkHandler   = (*sinkOp[Record, int])(nil)
	_ dataflow.Aborter            = (*sinkOp[Record, int])(nil)
	_ dataflow.SnapshotSummarizer = (*sinkOp[Record, int])(nil)
)

func newSinkOp[IN, TXN any](id string, sink TransactionalSink[IN, TXN], in *recordType, ctx *dataflow.Context) *sinkOp[IN, TXN] {
	o := &sinkOp[IN, TXN]{sink: sink, in: decoder[IN]{rt: in}}
	o.core = core{id: id, ts: NoTimestamp}
	o.setContext(ctx)
	o.tp = twophase.New[TXN](o, fmt.Sprintf("sink %s (node %s)", id, o.node), "")
	return o
}

func (o *sinkOp[IN, TXN]) setContext(ctx *dataflow.Context) {
	if ctx == nil {
		ctx = &dataflow.Context{}
	}
	o.dctx, o.node = ctx, ctx.Node
	o.now = ctx.Now
	if o.now == nil {
		o.now = func() int64 { return time.Now().UnixMilli() }
	}
	o.logger = connectorLogger(ctx)
	o.metrics = userMetrics(ctx, o.metrics)
	o.onErr = ctx.OnError
	if o.onErr == nil {
		o.onErr = dataflow.FailOnError{Node: o.node}
	}
}

// call runs user code, turning a panic into an error with its stack.
func (o *sinkOp[IN, TXN]) call(where string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &userPanic{op: o.id, where: where, val: r, stack: stack()}
		}
	}()
	return f()
}

// Open opens the sink, then recovers: commits the restored committables
// and has the sink abort the rest.
func (o *sinkOp[IN, TXN]) Open(ctx *dataflow.Context) error {
	if ctx != nil {
		o.setContext(ctx)
	}
	if err := o.call("Open", func() error { return o.sink.Open(&ConnectorContext{c: &o.core}) }); err != nil {
		return fmt.Errorf("sink %s: open: %w", o.id, err)
	}
	if o.openErr != nil {
		return fmt.Errorf("sink %s: open: %w", o.id, o.openErr)
	}
	rctx, cancel := context.WithTimeout(context.Background(), sinkRecoverTimeout)
	defer cancel()
	return o.tp.Recover(rctx)
}

// Process decodes r (a record that does not fit IN goes to the node's
// error policy) and writes it; a Write error fails the task.
func (o *sinkOp[IN, TXN]) Process(r *dataflow.Record, _ dataflow.Output) error {
	v, err := o.in.decode(r.Fields)
	if err != nil {
		if herr := o.onErr.Handle(r, nil, fmt.Errorf("sink %s: input: %w", o.id, err)); herr != nil {
			return herr
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), sinkCallTimeout)
	defer cancel()
	if err := o.call("Write", func() error { return o.sink.Write(ctx, v) }); err != nil {
		return fmt.Errorf("sink %s: write: %w", o.id, err)
	}
	return nil
}

// ProcessWatermark notes the end of a bounded input: Close commits.
func (o *sinkOp[IN, TXN]) ProcessWatermark(wm int64, out dataflow.Output) error {
	if wm == dataflow.MaxWatermark {
		o.tp.EndOfInput = true
	}
	return out.EmitWatermark(wm)
}

// Snapshot is the pre-commit of checkpoint n.
func (o *sinkOp[IN, TXN]) Snapshot(n int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sinkCallTimeout)
	defer cancel()
	return o.tp.PreCommit(ctx, n)
}

// Restore keeps the restored states for Open's recovery.
func (o *sinkOp[IN, TXN]) Restore(states [][]byte) error {
	for i, b := range states {
		if _, err := decodeSinkState[TXN](b); err != nil {
			return fmt.Errorf("sink %s: restored state %d: %w", o.id, i, err)
		}
	}
	o.tp.Restore(states)
	return nil
}

// NotifyCheckpointComplete commits the committables of n and earlier.
func (o *sinkOp[IN, TXN]) NotifyCheckpointComplete(ctx context.Context, n int64) error {
	return o.tp.CommitUpTo(ctx, n)
}

// SnapshotSummary lists the pending committables for weir checkpoint
// inspect, as the Kafka sink lists its transactions.
func (o *sinkOp[IN, TXN]) SnapshotSummary() dataflow.SnapshotSummary {
	var s dataflow.SnapshotSummary
	for _, p := range o.tp.Pending() {
		b, _ := json.Marshal(p.Committable)
		s.PendingTransactions = append(s.PendingTransactions, dataflow.PendingTransaction{TransactionalID: string(b), CheckpointID: p.Checkpoint})
	}
	return s
}

// Close commits everything after the end of a bounded input; otherwise
// (cancellation, stop with savepoint) it aborts the open transaction and
// leaves the pending ones to a notification or a restore.
func (o *sinkOp[IN, TXN]) Close(dataflow.Output) error {
	if o.closed {
		return nil
	}
	o.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), sinkCallTimeout)
	defer cancel()
	var err error
	if o.tp.EndOfInput {
		err = o.tp.Finish(ctx)
	} else {
		err = o.call("Abort", func() error { return o.sink.Abort(ctx) })
	}
	return errors.Join(err, o.closeSink())
}

// Abort aborts the open transaction on a failure, bounded by a short
// timeout; pre-committed transactions stay for the restore.
func (o *sinkOp[IN, TXN]) Abort() {
	if o.closed {
		return
	}
	o.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), sinkAbortTimeout)
	defer cancel()
	if err := o.call("Abort", func() error { return o.sink.Abort(ctx) }); err != nil {
		o.logger.Warn("sink abort failed; the restore cleans up", "err", err)
	}
	if err := o.closeSink(); err != nil {
		o.logger.Warn("sink close failed", "err", err)
	}
}

func (o *sinkOp[IN, TXN]) closeSink() error {
	c, ok := o.sink.(Closer)
	if !ok {
		return nil
	}
	return o.call("Close", c.Close)
}

// The twophase.Participant side.

// PreCommit implements twophase.Participant.
func (o *sinkOp[IN, TXN]) PreCommit(ctx context.Context, n int64) (txn TXN, ok bool, err error) {
	err = o.call("PreCommit", func() error {
		txn, ok, err = o.sink.PreCommit(ctx, n)
		return err
	})
	if err != nil {
		return txn, false, fmt.Errorf("sink %s: pre-commit for checkpoint %d: %w", o.id, n, err)
	}
	return txn, ok, nil
}

// Commit implements twophase.Participant.
func (o *sinkOp[IN, TXN]) Commit(ctx context.Context, p twophase.Pending[TXN]) error {
	return o.call("Commit", func() error { return o.sink.Commit(ctx, p.Committable) })
}

// EncodeState implements twophase.Participant.
func (o *sinkOp[IN, TXN]) EncodeState(pending []twophase.Pending[TXN]) ([]byte, error) {
	st := sinkStateJSON[TXN]{Version: sinkStateVersion, Subtask: o.dctx.Subtask, Pending: []pendingJSON[TXN]{}}
	for _, p := range pending {
		st.Pending = append(st.Pending, pendingJSON[TXN]{Checkpoint: p.Checkpoint, Txn: p.Committable})
	}
	return json.Marshal(st)
}

// PlanRecovery implements twophase.Participant: the committables of the
// restored subtasks this one owns (j mod n == i), oldest checkpoint first.
func (o *sinkOp[IN, TXN]) PlanRecovery(raw [][]byte) ([]twophase.Pending[TXN], error) {
	n, me := max(o.dctx.Parallelism, 1), o.dctx.Subtask
	o.owned = []int{me}
	var out []twophase.Pending[TXN]
	for i, b := range raw {
		st, err := decodeSinkState[TXN](b)
		if err != nil {
			return nil, fmt.Errorf("restored state %d: %w", i, err)
		}
		if st.Subtask%n != me {
			continue
		}
		if !slices.Contains(o.owned, st.Subtask) {
			o.owned = append(o.owned, st.Subtask)
		}
		for _, p := range st.Pending {
			out = append(out, twophase.Pending[TXN]{Checkpoint: p.Checkpoint, Committable: p.Txn})
		}
	}
	slices.Sort(o.owned)
	slices.SortStableFunc(out, func(a, b twophase.Pending[TXN]) int { return cmp.Compare(a.Checkpoint, b.Checkpoint) })
	return out, nil
}

// AbortLingering implements twophase.Participant through Recoverer.
func (o *sinkOp[IN, TXN]) AbortLingering(ctx context.Context) error {
	r, ok := o.sink.(Recoverer[TXN])
	if !ok {
		return nil
	}
	rec := Recovery[TXN]{Subtasks: slices.Clone(o.owned)}
	if len(rec.Subtasks) == 0 {
		rec.Subtasks = []int{o.dctx.Subtask}
	}
	return o.call("Recover", func() error { return r.Recover(ctx, rec) })
}

// sinkStateVersion is the version of a user sink's state.
const sinkStateVersion = 1

// maxSinkStateBytes bounds a state the decoder accepts.
const maxSinkStateBytes = 64 << 20

// sinkStateJSON is one sink subtask's state: its index and the
// committables pre-committed and not known to be committed.
type sinkStateJSON[TXN any] struct {
	Version int                `json:"version"`
	Subtask int                `json:"subtask"`
	Pending []pendingJSON[TXN] `json:"pending"`
}

type pendingJSON[TXN any] struct {
	Checkpoint int64 `json:"checkpoint"`
	Txn        TXN   `json:"txn"`
}

// decodeSinkState reads a user sink's state; an empty one (no state) is
// none.
func decodeSinkState[TXN any](b []byte) (sinkStateJSON[TXN], error) {
	var st sinkStateJSON[TXN]
	if len(b) == 0 {
		st.Version, st.Subtask = sinkStateVersion, -1
		return st, nil
	}
	if len(b) > maxSinkStateBytes {
		return st, fmt.Errorf("sink state of %d bytes, more than %d", len(b), maxSinkStateBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("sink state: %w", err)
	}
	if dec.More() {
		return st, errors.New("sink state: data after the state")
	}
	switch {
	case st.Version != sinkStateVersion:
		return st, fmt.Errorf("sink state version %d, this weir reads version %d", st.Version, sinkStateVersion)
	case st.Subtask < 0:
		return st, fmt.Errorf("sink state of subtask %d", st.Subtask)
	}
	for i, p := range st.Pending {
		if p.Checkpoint <= 0 {
			return st, fmt.Errorf("sink state: pending[%d]: checkpoint %d", i, p.Checkpoint)
		}
	}
	return st, nil
}
