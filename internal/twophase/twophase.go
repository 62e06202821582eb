// Package twophase is the lifecycle of a two-phase-commit sink, once for
// every such sink: the exactly-once Kafka sink and the SDK's
// TransactionalSink both run on it (docs/design/0006-user-connectors.md).
//
// The connector is a Participant: it writes into its open transaction,
// pre-commits it into a committable, commits a committable idempotently,
// aborts the open transaction, and encodes and plans its state. The
// Driver keeps the committables pre-committed for checkpoints whose
// completion has not been heard of, and calls the Participant in the
// protocol's order.
//
// The caller's duties, step by step (the sink operator does them on the
// task goroutine):
//
//  1. Restore(states) with the restored subtasks' states, before Open.
//  2. Recover(ctx) once connected: the restored pending committables are
//     committed, oldest checkpoint first, then the Participant aborts what
//     the failure left open.
//  3. On barrier n, PreCommit(ctx, n): the open transaction becomes pending
//     for n; the returned bytes are the subtask's state in checkpoint n.
//  4. On "checkpoint n complete", CommitUpTo(ctx, n).
//  5. At the end of a bounded input, Finish(ctx) commits everything; on
//     cancellation or failure the caller aborts the open transaction
//     (Participant.Abort) and leaves the pending ones to a restore.
//
// A commit that fails is returned as an error and the committable stays
// pending: the task fails and the restore commits it again. Nothing here
// turns a failed commit into success.
package twophase

import (
	"context"
	"fmt"
	"math"
)

// Pending is a committable pre-committed for a checkpoint.
type Pending[C any] struct {
	Checkpoint  int64
	Committable C
}

// Participant is a connector's side of the protocol. Its methods are
// called on one goroutine.
type Participant[C any] interface {
	// PreCommit flushes the open transaction for checkpoint n and returns
	// its committable; ok is false when nothing was written since the
	// last barrier (nothing to commit). The next write opens a new
	// transaction.
	PreCommit(ctx context.Context, checkpointID int64) (c C, ok bool, err error)
	// Commit makes a pre-committed transaction visible. A repeated
	// commit of a committed transaction must succeed.
	Commit(ctx context.Context, p Pending[C]) error
	// EncodeState returns the subtask's snapshot with these committables
	// pending.
	EncodeState(pending []Pending[C]) ([]byte, error)
	// PlanRecovery decodes the restored states and returns the
	// committables to commit before anything else, in order. It is
	// called once, before AbortLingering.
	PlanRecovery(states [][]byte) ([]Pending[C], error)
	// AbortLingering aborts the transactions a failure left open that no
	// restored state lists as pending (their records are replayed).
	AbortLingering(ctx context.Context) error
}

// Driver runs one subtask's two-phase commit over a Participant. Not
// safe for concurrent use.
type Driver[C any] struct {
	p        Participant[C]
	name     string // "kafka sink \"out\"": what errors start with
	hint     string // appended to a failed recommit's error
	pending  []Pending[C]
	restored [][]byte
	// EndOfInput is set when the final watermark went through: Close
	// then calls Finish.
	EndOfInput bool
	committed  int64
}

// New returns a driver; name prefixes its errors, hint tells the user
// what may cause a restored transaction to be gone (may be empty).
func New[C any](p Participant[C], name, hint string) *Driver[C] {
	return &Driver[C]{p: p, name: name, hint: hint}
}

// Restore keeps the restored states for Recover.
func (d *Driver[C]) Restore(states [][]byte) { d.restored = states }

// Recover commits the restored pending committables, oldest checkpoint
// first, then has the participant abort the rest.
func (d *Driver[C]) Recover(ctx context.Context) error {
	states := d.restored
	d.restored = nil
	commit, err := d.p.PlanRecovery(states)
	if err != nil {
		return fmt.Errorf("%s: restore: %w", d.name, err)
	}
	for _, c := range commit {
		if err := d.p.Commit(ctx, c); err != nil {
			msg := fmt.Sprintf("%s: restore: cannot commit %v of checkpoint %d, which belongs to a completed checkpoint; its output is not visible and is not written again (the job is failed rather than losing it silently", d.name, c.Committable, c.Checkpoint)
			if d.hint != "" {
				msg += "; " + d.hint
			}
			return fmt.Errorf("%s): %w", msg, err)
		}
		d.committed++
	}
	if err := d.p.AbortLingering(ctx); err != nil {
		return fmt.Errorf("%s: restore: %w", d.name, err)
	}
	return nil
}

// PreCommit pre-commits the open transaction for checkpoint n and returns
// the state to put into the checkpoint.
func (d *Driver[C]) PreCommit(ctx context.Context, n int64) ([]byte, error) {
	c, ok, err := d.p.PreCommit(ctx, n)
	if err != nil {
		return nil, err
	}
	if ok {
		d.pending = append(d.pending, Pending[C]{Checkpoint: n, Committable: c})
	}
	b, err := d.p.EncodeState(d.pending)
	if err != nil {
		return nil, fmt.Errorf("%s: encode state: %w", d.name, err)
	}
	return b, nil
}

// CommitUpTo commits the pending committables of checkpoint n and
// earlier, oldest first. The ones not committed stay pending.
func (d *Driver[C]) CommitUpTo(ctx context.Context, n int64) error {
	for len(d.pending) > 0 && d.pending[0].Checkpoint <= n {
		p := d.pending[0]
		if err := d.p.Commit(ctx, p); err != nil {
			return fmt.Errorf("%s: checkpoint %d complete: cannot commit %v of checkpoint %d: %w", d.name, n, p.Committable, p.Checkpoint, err)
		}
		d.committed++
		d.pending = d.pending[1:]
	}
	return nil
}

// Finish commits everything at the end of a bounded input: the pending
// committables and the open transaction, which no checkpoint will cover.
func (d *Driver[C]) Finish(ctx context.Context) error {
	c, ok, err := d.p.PreCommit(ctx, math.MaxInt64)
	if err != nil {
		return err
	}
	if ok {
		d.pending = append(d.pending, Pending[C]{Checkpoint: math.MaxInt64, Committable: c})
	}
	return d.CommitUpTo(ctx, math.MaxInt64)
}

// Pending returns the committables pre-committed and not yet committed,
// oldest first. The caller must not change them.
func (d *Driver[C]) Pending() []Pending[C] { return d.pending }

// Committed is how many committables this driver committed.
func (d *Driver[C]) Committed() int64 { return d.committed }
