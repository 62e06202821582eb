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
// A commit whose outcome is unknown (the Participant's error wraps
// ErrOutcomeUnknown: a broker killed during the commit, a request timed
// out) is committed again, with backoff, until it succeeds, a definite
// error comes, or ctx ends; the task waits meanwhile (Blocked counts the
// wait as backpressure) instead of failing and restarting the job. This is
// why Commit must be idempotent. Any other failed commit is returned as
// an error and the committable stays pending: the task fails and the
// restore commits it again. Nothing here turns a failed commit into
// success.
package twophase

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// ErrOutcomeUnknown marks a Commit error after which the committable may
// or may not be committed: the request may have reached the other side and
// no answer came back. The Driver commits again rather than failing.
var ErrOutcomeUnknown = errors.New("commit outcome unknown")

// Backoff between recommits after an unknown outcome: it doubles from
// retryMin up to retryMax.
const (
	retryMin = 200 * time.Millisecond
	retryMax = 5 * time.Second
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
	// Blocked, when set, is called when a commit starts waiting on an
	// unknown outcome and returns what to call when the wait ends: the
	// sink counts that time as backpressure.
	Blocked func() (done func())
	// Logger, when set, hears of the recommits.
	Logger    *slog.Logger
	committed int64
	recommits int64
	// after is time.After, replaced by tests.
	after func(time.Duration) <-chan time.Time
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
		if err := d.commit(ctx, c); err != nil {
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
		if err := d.commit(ctx, p); err != nil {
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

// commit commits p, again and again while the outcome is unknown, until
// it succeeds, fails definitely, or ctx ends. The error is the last
// attempt's (with ctx's reason when ctx ended the retries).
func (d *Driver[C]) commit(ctx context.Context, p Pending[C]) error {
	err := d.p.Commit(ctx, p)
	if err == nil || !errors.Is(err, ErrOutcomeUnknown) {
		return err
	}
	if d.Blocked != nil {
		defer d.Blocked()()
	}
	after := d.after
	if after == nil {
		after = time.After
	}
	wait := retryMin
	for attempt := 1; ; attempt++ {
		if d.Logger != nil && (attempt == 1 || attempt%10 == 0) {
			d.Logger.Warn("commit outcome unknown; committing again", "sink", d.name, "checkpoint", p.Checkpoint,
				"committable", fmt.Sprint(p.Committable), "attempt", attempt, "backoff", wait, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up committing again after %d attempts (%w): %w", attempt, context.Cause(ctx), err)
		case <-after(wait):
		}
		wait = min(2*wait, retryMax)
		d.recommits++
		err = d.p.Commit(ctx, p)
		if err == nil || !errors.Is(err, ErrOutcomeUnknown) {
			return err
		}
	}
}

// Recommits is how many times a commit was repeated after an unknown
// outcome.
func (d *Driver[C]) Recommits() int64 { return d.recommits }

// Pending returns the committables pre-committed and not yet committed,
// oldest first. The caller must not change them.
func (d *Driver[C]) Pending() []Pending[C] { return d.pending }

// Committed is how many committables this driver committed.
func (d *Driver[C]) Committed() int64 { return d.committed }
