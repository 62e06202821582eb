package sdk

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/weir-stream/weir/dataflow"
)

// WithAttempt runs a sink harness as the job's execution attempt a
// (default 0; a restored job runs a later attempt).
func WithAttempt(a int64) HarnessOption {
	return func(c *harnessConfig) { c.attempt = a }
}

// SinkTestHarness runs a TransactionalSink without a cluster, through the
// same two-phase-commit driver a worker uses: write records, take
// checkpoints, complete them, fail, and restore a new harness from the
// states the checkpoints returned (WithRestore, also split over several
// subtasks with WithSubtask). Not safe for concurrent use.
type SinkTestHarness[IN, TXN any] struct {
	op *sinkOp[IN, TXN]
}

// NewSinkTestHarness opens s in a harness, restoring and recovering first
// when WithRestore is given (the restored committables are committed,
// then Recover runs).
func NewSinkTestHarness[IN, TXN any](s TransactionalSink[IN, TXN], opts ...HarnessOption) (*SinkTestHarness[IN, TXN], error) {
	cfg := harnessConfig{maxPar: dataflow.DefaultMaxParallelism, par: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.par < 1 || cfg.subtask < 0 || cfg.subtask >= cfg.par {
		return nil, fmt.Errorf("sdk: bad subtask %d of %d", cfg.subtask, cfg.par)
	}
	in, err := recordTypeOf[IN]()
	if err != nil {
		return nil, err
	}
	ctx := &dataflow.Context{
		JobID: "test-job", JobName: "test", Node: "sink", Subtask: cfg.subtask, Parallelism: cfg.par,
		MaxParallelism: cfg.maxPar, Attempt: cfg.attempt, Checkpointing: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: &dataflow.Counters{},
		OnError: dataflow.FailOnError{Node: "sink"},
	}
	h := &SinkTestHarness[IN, TXN]{op: newSinkOp("test.harness", s, in, ctx)}
	if cfg.restore != nil {
		if err := h.op.Restore(cfg.restore); err != nil {
			return nil, err
		}
	}
	if err := h.op.Open(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// Write writes v as the next record.
func (h *SinkTestHarness[IN, TXN]) Write(v IN) error {
	r := dataflow.Record{Time: NoTimestamp, Fields: encode(h.op.in.rt, &v)}
	return h.op.Process(&r, nil)
}

// Checkpoint is checkpoint id's barrier: the pre-commit. It returns the
// sink's state in that checkpoint, for WithRestore.
func (h *SinkTestHarness[IN, TXN]) Checkpoint(id int64) ([]byte, error) { return h.op.Snapshot(id) }

// CheckpointComplete tells the sink that checkpoint id completed: its
// committables and older ones are committed.
func (h *SinkTestHarness[IN, TXN]) CheckpointComplete(id int64) error {
	return h.op.NotifyCheckpointComplete(context.Background(), id)
}

// EndOfInput ends a bounded input and closes the sink: everything written
// is committed.
func (h *SinkTestHarness[IN, TXN]) EndOfInput() error {
	if err := h.op.ProcessWatermark(dataflow.MaxWatermark, discardOutput{}); err != nil {
		return err
	}
	return h.op.Close(nil)
}

// Fail aborts the sink as a failed subtask's: the open transaction is
// aborted, pre-committed ones stay for a restore.
func (h *SinkTestHarness[IN, TXN]) Fail() { h.op.Abort() }

// Pending returns the committables pre-committed and not yet committed.
func (h *SinkTestHarness[IN, TXN]) Pending() []TXN {
	var out []TXN
	for _, p := range h.op.tp.Pending() {
		out = append(out, p.Committable)
	}
	return out
}

type discardOutput struct{}

func (discardOutput) Emit(*dataflow.Record) error             { return nil }
func (discardOutput) EmitSide(string, *dataflow.Record) error { return nil }
func (discardOutput) EmitWatermark(int64) error               { return nil }
