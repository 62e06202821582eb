package sdk

import (
	"context"
	"log/slog"
)

// TransactionalSink is a sink that writes exactly once by two-phase
// commit, tied to weir's checkpoints: a spec node
// `sink: {connector: <id>}`. It is the interface the built-in
// exactly-once Kafka sink runs on (docs/design/0006-user-connectors.md).
//
// The lifecycle of one subtask:
//
//  1. Open, once, before anything else. When the subtask was restored
//     from a checkpoint, weir then commits every transaction the
//     checkpoint lists as pre-committed (Commit, oldest checkpoint first),
//     and calls Recover when the sink implements Recoverer.
//  2. Write for each record: into the open transaction, which the sink
//     begins when it needs one.
//  3. PreCommit(n) at checkpoint n's barrier: make the open transaction's
//     writes durable but not yet visible and return its committable, a
//     value that names it (TXN; ok false when nothing was written since
//     the last barrier). weir keeps it in checkpoint n, JSON-encoded.
//     The next Write begins a new transaction.
//  4. Commit(txn) when checkpoint n has completed, for n's committables
//     and older ones, in order.
//  5. At the end of a bounded input the final checkpoint commits
//     everything; records written after it (by operators that emit when
//     they close) are pre-committed with checkpointID math.MaxInt64 and
//     committed when the sink closes. On a failure or cancellation weir
//     calls Abort for the open transaction (pre-committed ones stay for
//     the restore).
//
// weir calls one subtask's methods from one goroutine, never
// concurrently. An error from any method fails the task, which restarts
// from the last completed checkpoint; a panic does too.
//
// Commit must be idempotent: after a failure weir commits the restored
// checkpoint's committables again, also those whose commit had
// succeeded. It must also not turn a transaction that is gone into
// success: return an error, so the job fails instead of losing output a
// completed checkpoint promised.
type TransactionalSink[IN, TXN any] interface {
	// Open prepares the subtask (connections, directories). The restored
	// committables are committed after it returns.
	Open(ctx *ConnectorContext) error
	// Write adds in to the open transaction, beginning one if needed.
	Write(ctx context.Context, in IN) error
	// PreCommit ends the open transaction's writing at the barrier of
	// checkpointID: flush it, keep it invisible, return its committable.
	// ok is false when no transaction is open (nothing to commit).
	PreCommit(ctx context.Context, checkpointID int64) (txn TXN, ok bool, err error)
	// Commit makes a pre-committed transaction visible. Idempotent.
	Commit(ctx context.Context, txn TXN) error
	// Abort discards the open transaction (not the pre-committed ones)
	// on a failure or cancellation. It should return promptly once ctx
	// ends; what it leaves behind, Recover cleans up after a restart.
	Abort(ctx context.Context) error
}

// Recoverer is implemented by sinks that must clean up after a failure:
// transactions begun after the restored checkpoint (their records are
// replayed, so they must never become visible) and pre-committed ones of
// checkpoints that did not complete. weir calls Recover once per subtask
// after Open and after committing the restored committables, also on a
// fresh start (a restart before the first checkpoint leaves transactions
// behind too).
type Recoverer[TXN any] interface {
	Recover(ctx context.Context, r Recovery[TXN]) error
}

// Recovery is what a restored sink subtask is responsible for.
type Recovery[TXN any] struct {
	// Subtasks are the subtasks of earlier runs whose leftovers this
	// subtask owns: its own index, and every restored old subtask j with
	// j mod parallelism == its index (when the job was rescaled).
	Subtasks []int
	// Committed are the committables weir just committed from the
	// restored checkpoint; every other transaction of Subtasks that is
	// not visible is to be aborted.
	Committed []TXN
}

// ConnectorContext is what a source's or sink's Open may use: where the
// subtask runs, its logger and its metrics.
type ConnectorContext struct{ c *core }

// Connector is the registered id.
func (x *ConnectorContext) Connector() string { return x.c.id }

// JobID is the job's id, unique on the cluster: a prefix for the names
// of what the connector creates outside weir.
func (x *ConnectorContext) JobID() string { return x.c.dctx.JobID }

// JobName is the job's name.
func (x *ConnectorContext) JobName() string { return x.c.dctx.JobName }

// Node is the node's name in the job spec.
func (x *ConnectorContext) Node() string { return x.c.node }

// Subtask is this subtask's index, from 0.
func (x *ConnectorContext) Subtask() int { return x.c.dctx.Subtask }

// Parallelism is the node's number of subtasks.
func (x *ConnectorContext) Parallelism() int { return max(x.c.dctx.Parallelism, 1) }

// Attempt is the job's execution attempt; it grows with every restart.
// Put it into the names of transactions, so a zombie of an older attempt
// (a paused worker that wakes up) never writes into the current one's.
func (x *ConnectorContext) Attempt() int64 { return x.c.dctx.Attempt }

// Logger is the subtask's logger.
func (x *ConnectorContext) Logger() *slog.Logger { return x.c.logger }

// Metrics is where the connector defines its metrics (weir_user_<name>).
func (x *ConnectorContext) Metrics() *Metrics { return &Metrics{c: x.c} }
