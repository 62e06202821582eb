package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/exchange"
)

// Run runs one subtask until its input ends (nil), ctx is cancelled
// (ctx.Err()) or something fails (an error naming the node or channel).
//
// A source vertex runs its source; when the source returns (a bounded
// source), the final watermark goes through the chain, the operators are
// closed, and end of stream goes downstream. Any other vertex reads its
// input gate until every channel has ended, then does the same.
//
// Every goroutine Run starts has exited when it returns, and its operators
// have been closed.
func Run(ctx context.Context, d Deployment, env Env, counters *dataflow.Counters) error {
	if counters == nil {
		counters = &dataflow.Counters{}
	}
	t, err := newTask(d, env, counters)
	if err != nil {
		return fmt.Errorf("subtask %s: %w", d.ID, err)
	}
	err = safely(func() error { return t.run(ctx) })
	if err != nil && ctx.Err() != nil {
		// Whatever broke while cancelling is a consequence.
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("subtask %s: %w", d.ID, err)
	}
	return nil
}

// String renders a subtask ID for messages.
func (id ID) String() string {
	return fmt.Sprintf("%s[%d] (job %s attempt %d)", id.VertexID, id.Subtask, id.JobID, id.Attempt)
}

// NodeError is an error raised by an operator or source of the chain.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string {
	// A record error from the node's error policy names the node already.
	if re := (*dataflow.RecordError)(nil); errors.As(e.Err, &re) && re.Node == e.Node {
		return e.Err.Error()
	}
	return "node " + e.Node + ": " + e.Err.Error()
}

func (e *NodeError) Unwrap() error { return e.Err }

// OutputError is an error writing to an output channel.
type OutputError struct {
	Edge    int
	Subtask int
	Err     error
}

func (e *OutputError) Error() string {
	return fmt.Sprintf("output edge %d to subtask %d: %v", e.Edge, e.Subtask, e.Err)
}

func (e *OutputError) Unwrap() error { return e.Err }

// wrapNode attributes err to a node unless it already names its origin.
func wrapNode(node string, err error) error {
	if err == nil {
		return nil
	}
	var ne *NodeError
	var oe *OutputError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &NodeError{Node: node, Err: err}
}

type task struct {
	d        Deployment
	env      Env
	x        *exchange.Exchange
	counters *dataflow.Counters
	logger   *slog.Logger
	g        *graph.Graph
	v        *graph.Vertex
	maxPar   int

	ctx     context.Context // the run's context, for blocking writes
	nodes   []*chainNode
	source  dataflow.Source
	gate    *exchange.InputGate
	writers []*edgeWriter
	senders []exchange.Sender

	// Checkpoints.
	exactlyOnce bool
	align       *aligner      // non-source tasks
	srcOut      *sourceOutput // source tasks
	stopSource  func()        // cancels the source's Run
	sourceDone  bool          // Run returned (guarded by srcOut.mu)
	// inputEnded is set (under srcOut.mu) while a source whose input has
	// ended waits for the final checkpoint; closed when it completes.
	inputEnded  chan struct{}
	stopID      int64 // the last barrier taken was a stop barrier (not aborted)
	lastTrigger int64 // the highest barrier id this source injected
	stopping    bool  // source: the stop-with-savepoint completed
	upCtx       context.Context
	upCancel    context.CancelFunc
	upMu        sync.Mutex
	upClosed    bool
	uploads     map[int64]context.CancelFunc
	upWG        sync.WaitGroup
	storeMu     sync.Mutex
	store       StateStore
}

func newTask(d Deployment, env Env, counters *dataflow.Counters) (*task, error) {
	if d.Graph == nil {
		return nil, errors.New("deployment has no graph")
	}
	if env.Builder == nil || env.Exchange == nil {
		return nil, errors.New("task environment needs a Builder and an Exchange")
	}
	v := d.Graph.Vertex(d.ID.VertexID)
	if v == nil {
		return nil, fmt.Errorf("vertex %q not in the job graph", d.ID.VertexID)
	}
	if len(v.Nodes) == 0 {
		return nil, fmt.Errorf("vertex %q has no nodes", v.ID)
	}
	if d.ID.Subtask < 0 || d.ID.Subtask >= v.Parallelism {
		return nil, fmt.Errorf("subtask %d out of range for parallelism %d", d.ID.Subtask, v.Parallelism)
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	maxPar := d.Graph.MaxParallelism
	if maxPar <= 0 {
		maxPar = dataflow.DefaultMaxParallelism
	}
	return &task{
		d: d, env: env, x: env.Exchange, counters: counters, g: d.Graph, v: v, maxPar: maxPar,
		logger:      logger.With("job", d.ID.JobID, "attempt", d.ID.Attempt, "vertex", v.ID, "subtask", d.ID.Subtask),
		exactlyOnce: checkpointMode(d.Graph.Job) != spec.ModeAtLeastOnce,
		uploads:     map[int64]context.CancelFunc{},
	}, nil
}

func (t *task) run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t.ctx = ctx
	t.counters.Start()
	defer t.counters.Stop()
	t.upCtx, t.upCancel = context.WithCancel(ctx)
	finished := false
	// Uploads in flight finish when the task does (a stop-with-savepoint
	// acknowledges after its last record) and are abandoned otherwise.
	defer func() { t.endUploads(finished) }()
	defer t.declineQueued()
	isSource := t.v.Nodes[0].Source != nil
	if isSource && len(t.v.Inputs) > 0 {
		return fmt.Errorf("vertex %q starts with a source but has input edges", t.v.ID)
	}
	if !isSource && len(t.v.Inputs) == 0 {
		return fmt.Errorf("vertex %q has no source and no input edges", t.v.ID)
	}

	// The gate first: upstream tasks on this worker wait for it, and it
	// never waits for anything itself.
	if !isSource {
		if err := t.openGate(); err != nil {
			return err
		}
		defer t.gate.Close()
	}
	if err := t.buildChain(); err != nil {
		return err
	}
	defer func() {
		if !finished {
			t.abort()
		}
	}()
	if t.d.Restore != nil {
		if err := t.restore(ctx); err != nil {
			return err
		}
	}
	if err := t.openOutputs(ctx); err != nil {
		return err
	}
	if err := t.openChain(); err != nil {
		return err
	}
	if t.env.Running != nil {
		t.env.Running()
	}

	stopFlusher := t.startFlusher(ctx)
	defer stopFlusher()

	if isSource {
		err = t.runSource(ctx)
	} else {
		err = t.runGate(ctx)
	}
	if err != nil {
		return err
	}
	if err := t.finish(); err != nil {
		return err
	}
	stopFlusher()
	finished = true
	// End of stream was written on every channel: close them gracefully.
	var first error
	for _, s := range t.senders {
		if err := s.Close(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// finish ends the chain after its input ended (the final watermark went
// through already): closes the source and the operators in chain order, so
// what an operator emits on Close reaches the next one while it is open,
// and sends end of stream downstream.
func (t *task) finish() error {
	for i, n := range t.nodes {
		if n.closed {
			continue
		}
		var out dataflow.Output = n
		if t.stopped() {
			// Stop with savepoint: what an operator would emit on Close
			// belongs after the savepoint; a restore produces it.
			out = discard{}
		}
		if err := t.closeNode(i, out); err != nil {
			return wrapNode(n.name, fmt.Errorf("close: %w", err))
		}
	}
	return t.broadcast(&dataflow.Element{Kind: dataflow.KindEndOfStream})
}

// abort closes what is still open after a failure or cancellation:
// operators with an output that discards, and every channel (which the
// receivers see as broken).
func (t *task) abort() {
	for i, n := range t.nodes {
		if !n.opened || n.closed {
			continue
		}
		if a, ok := n.op.(dataflow.Aborter); ok && (i > 0 || t.source == nil) {
			n.closed = true
			if err := safely(func() error { a.Abort(); return nil }); err != nil {
				t.logger.Warn("aborting after failure", "node", n.name, "err", err)
			}
			if c, ok := n.dctx.OnError.(io.Closer); ok {
				_ = c.Close()
			}
			continue
		}
		if err := safely(func() error { return t.closeNode(i, discard{}) }); err != nil {
			t.logger.Warn("closing after failure", "node", n.name, "err", err)
		}
	}
	// A cancelled context: nothing waits for credit or acknowledgement.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, s := range t.senders {
		_ = s.Close(ctx)
	}
}

// closeNode closes node i of the chain (its source or operator, emitting
// into out), then the node's error handler when it holds a resource (a
// dead-letter producer).
func (t *task) closeNode(i int, out dataflow.Output) error {
	n := t.nodes[i]
	n.closed = true
	var err error
	if i == 0 && t.source != nil {
		err = t.source.Close()
	} else {
		err = n.op.Close(out)
	}
	if c, ok := n.dctx.OnError.(io.Closer); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// safely runs f, turning a panic into an error.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

// chainNode is one node of the chain and the Output it emits into.
type chainNode struct {
	t      *task
	name   string
	op     dataflow.Operator // nil for the source at the head
	next   *chainNode
	main   []*edgeWriter            // out edges of the main output
	side   map[string][]*edgeWriter // out edges of side outputs by tag
	all    []*edgeWriter            // main and side edges: watermarks go to all
	sink   bool                     // a sink node, or the last node of a vertex without out edges
	dctx   *dataflow.Context
	opened bool
	closed bool
}

func (t *task) buildChain() error {
	v := t.v
	kg := dataflow.KeyGroupRangeFor(t.maxPar, v.Parallelism, t.d.ID.Subtask)
	jobName := ""
	if t.g.Job != nil {
		jobName = t.g.Job.Name
	}
	for i, node := range v.Nodes {
		if node == nil {
			return fmt.Errorf("vertex %q: node %d is nil", v.ID, i)
		}
		dctx := &dataflow.Context{
			JobID:          t.d.ID.JobID,
			JobName:        jobName,
			Node:           node.Name,
			Subtask:        t.d.ID.Subtask,
			Parallelism:    v.Parallelism,
			MaxParallelism: t.maxPar,
			KeyGroups:      kg,
			Logger:         t.logger.With("node", node.Name),
			Metrics:        t.counters,
			// The builder replaces this with the node's policy.
			OnError:       dataflow.FailOnError{Node: node.Name},
			Attempt:       t.d.ID.Attempt,
			Checkpointing: t.endsWithCheckpoint(),
			Now:           t.env.Now,
		}
		n := &chainNode{t: t, name: node.Name, side: map[string][]*edgeWriter{}, dctx: dctx}
		switch {
		case i == 0 && node.Source != nil:
			src, err := t.env.Builder.Source(t.g.Job, node, dctx)
			if err != nil {
				return &NodeError{Node: node.Name, Err: fmt.Errorf("build: %w", err)}
			}
			t.source = src
		case node.Source != nil:
			return fmt.Errorf("vertex %q: source %q is not at the head of the chain", v.ID, node.Name)
		default:
			op, err := t.env.Builder.Operator(t.g.Job, node, dctx)
			if err != nil {
				return &NodeError{Node: node.Name, Err: fmt.Errorf("build: %w", err)}
			}
			n.op = op
		}
		if i > 0 {
			t.nodes[i-1].next = n
		}
		t.nodes = append(t.nodes, n)
	}
	return nil
}

func (t *task) openChain() error {
	if t.source != nil {
		t.nodes[0].opened = true // Close is due even when Open fails halfway
		if err := t.source.Open(t.nodes[0].dctx); err != nil {
			return &NodeError{Node: t.nodes[0].name, Err: fmt.Errorf("open: %w", err)}
		}
	}
	for _, n := range t.nodes {
		if n.op == nil {
			continue
		}
		n.opened = true
		if err := n.op.Open(n.dctx); err != nil {
			return &NodeError{Node: n.name, Err: fmt.Errorf("open: %w", err)}
		}
	}
	return nil
}

// checkpointMode is the job's checkpoint.mode, exactly_once by default.
func checkpointMode(job *spec.Job) string {
	if job != nil && job.Checkpoint != nil && job.Checkpoint.Mode != "" {
		return job.Checkpoint.Mode
	}
	return spec.ModeExactlyOnce
}

// stopped says the subtask ends after a stop-with-savepoint: no final
// watermark, and nothing emitted on close.
func (t *task) stopped() bool { return t.stopping || t.stopID != 0 }
