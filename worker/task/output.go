package task

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weir-stream/weir/dataflow"
	datapb "github.com/weir-stream/weir/proto/data/v1"
	"github.com/weir-stream/weir/worker/exchange"
)

// edgeWriter writes one out edge: it partitions records over the
// downstream subtasks' channels and sends every other element to all.
type edgeWriter struct {
	t       *task
	edge    int
	part    dataflow.Partitioning
	senders []exchange.Sender // by downstream subtask; nil where not connected
	targets []int             // the connected downstream subtasks
	downPar int
	rr      int
	scratch dataflow.Element // see writeRecord
}

// openOutputs connects every out edge of the vertex to its downstream
// subtasks: in memory when they run on this worker, else over gRPC.
func (t *task) openOutputs(ctx context.Context) error {
	byNode := map[string]*chainNode{}
	for _, n := range t.nodes {
		byNode[n.name] = n
	}
	self := t.d.ID.Subtask
	for _, idx := range t.v.Outputs {
		if idx < 0 || idx >= len(t.g.Edges) || t.g.Edges[idx] == nil {
			return fmt.Errorf("vertex %q: output edge %d not in the graph", t.v.ID, idx)
		}
		e := t.g.Edges[idx]
		n := byNode[e.FromNode]
		if n == nil {
			return fmt.Errorf("edge %d: node %q is not in vertex %q", idx, e.FromNode, t.v.ID)
		}
		down := t.g.Vertex(e.To)
		if down == nil || down.Parallelism < 1 {
			return fmt.Errorf("edge %d: downstream vertex %q not in the graph", idx, e.To)
		}
		places := t.d.Placements[e.To]
		if len(places) < down.Parallelism {
			return fmt.Errorf("edge %d: %d placements for the %d subtasks of %q", idx, len(places), down.Parallelism, e.To)
		}
		w := &edgeWriter{t: t, edge: e.Index, part: e.Partitioning, senders: make([]exchange.Sender, down.Parallelism),
			downPar: down.Parallelism, rr: self}
		switch e.Partitioning {
		case dataflow.Forward:
			if down.Parallelism != t.v.Parallelism {
				return fmt.Errorf("edge %d: forward from parallelism %d to %d", idx, t.v.Parallelism, down.Parallelism)
			}
			w.targets = []int{self}
		case dataflow.Hash, dataflow.Rebalance, dataflow.Broadcast:
			for j := range down.Parallelism {
				w.targets = append(w.targets, j)
			}
		default:
			return fmt.Errorf("edge %d: unknown partitioning %q", idx, e.Partitioning)
		}
		for _, j := range w.targets {
			id := &datapb.ChannelID{JobId: t.d.ID.JobID, Attempt: t.d.ID.Attempt, Edge: int32(e.Index),
				FromSubtask: int32(self), ToSubtask: int32(j)}
			opts := []exchange.SenderOption{exchange.WithCounters(t.counters)}
			var s exchange.Sender
			var err error
			if places[j].WorkerID == t.d.LocalWorkerID {
				s, err = t.x.DialLocal(ctx, id, opts...)
			} else {
				s, err = t.x.Dial(ctx, places[j].DataAddr, id, opts...)
			}
			if err != nil {
				return &OutputError{Edge: e.Index, Subtask: j, Err: err}
			}
			w.senders[j] = s
			t.senders = append(t.senders, s)
		}
		t.writers = append(t.writers, w)
		n.all = append(n.all, w)
		if e.Tag == "" {
			n.main = append(n.main, w)
		} else {
			n.side[e.Tag] = append(n.side[e.Tag], w)
		}
	}
	// The records a sink writes are the vertex's records out, besides those
	// its side outputs send downstream; a chain end without out edges (a
	// sink by position) counts the same way.
	last := t.nodes[len(t.nodes)-1]
	last.sink = t.v.Nodes[len(t.v.Nodes)-1].Sink != nil || len(t.writers) == 0
	return nil
}

func (w *edgeWriter) write(j int, e *dataflow.Element) error {
	if err := w.senders[j].Write(w.t.ctx, e); err != nil {
		return &OutputError{Edge: w.edge, Subtask: j, Err: err}
	}
	return nil
}

func (w *edgeWriter) writeRecord(r *dataflow.Record) error {
	// One element reused per edge: a fresh one would escape through the
	// Sender interface and cost a heap allocation per record. Senders copy
	// or encode it and keep no pointer.
	e := &w.scratch
	*e = dataflow.Element{Kind: dataflow.KindRecord, Record: *r}
	defer func() { e.Record = dataflow.Record{} }()
	w.t.counters.RecordsOut.Add(1)
	switch w.part {
	case dataflow.Forward:
		return w.write(w.targets[0], e)
	case dataflow.Hash:
		g := dataflow.KeyGroup(r.Key, w.t.maxPar)
		return w.write(dataflow.SubtaskForKeyGroup(w.t.maxPar, w.downPar, g), e)
	case dataflow.Rebalance:
		j := w.targets[w.rr%len(w.targets)]
		w.rr++
		return w.write(j, e)
	default: // broadcast
		for _, j := range w.targets {
			if err := w.write(j, e); err != nil {
				return err
			}
		}
		return nil
	}
}

// writeAll sends a non-record element on every channel of the edge.
func (w *edgeWriter) writeAll(e *dataflow.Element) error {
	for _, j := range w.targets {
		if err := w.write(j, e); err != nil {
			return err
		}
	}
	return nil
}

// broadcast sends a non-record element on every out channel of the task.
func (t *task) broadcast(e *dataflow.Element) error {
	for _, w := range t.writers {
		if err := w.writeAll(e); err != nil {
			return err
		}
	}
	return nil
}

// startFlusher flushes partial batches every flush interval so records do
// not wait for a full batch under light load. The returned stop is
// idempotent and returns once the flusher has exited.
func (t *task) startFlusher(ctx context.Context) (stop func()) {
	if len(t.senders) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(t.x.FlushInterval())
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, s := range t.senders {
				// A broken channel fails the next Write on the task's
				// goroutine; nothing to do here.
				_ = s.TryFlush(ctx)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// Output of a chain node.

func (n *chainNode) process(r *dataflow.Record) error {
	if n.sink {
		n.t.counters.RecordsOut.Add(1)
	}
	return wrapNode(n.name, n.op.Process(r, n))
}

// processInput hands a record of the vertex's input number input (the
// position of its edge in Vertex.Inputs) to the head of the chain.
func (n *chainNode) processInput(ip dataflow.InputProcessor, input int, r *dataflow.Record) error {
	if n.sink {
		n.t.counters.RecordsOut.Add(1)
	}
	return wrapNode(n.name, ip.ProcessInput(input, r, n))
}

func (n *chainNode) processWatermark(wm int64) error {
	if h, ok := n.op.(dataflow.WatermarkHandler); ok {
		return wrapNode(n.name, h.ProcessWatermark(wm, n))
	}
	return n.EmitWatermark(wm)
}

// Emit implements dataflow.Output.
func (n *chainNode) Emit(r *dataflow.Record) error {
	if n.next != nil {
		if err := n.next.process(r); err != nil {
			return err
		}
	}
	for _, w := range n.main {
		if err := w.writeRecord(r); err != nil {
			return err
		}
	}
	return nil
}

// EmitSide implements dataflow.Output.
func (n *chainNode) EmitSide(tag string, r *dataflow.Record) error {
	for _, w := range n.side[tag] {
		if err := w.writeRecord(r); err != nil {
			return err
		}
	}
	return nil
}

// EmitWatermark implements dataflow.Output.
func (n *chainNode) EmitWatermark(wm int64) error {
	if n.next != nil {
		if err := n.next.processWatermark(wm); err != nil {
			return err
		}
	}
	e := dataflow.Element{Kind: dataflow.KindWatermark, Watermark: wm}
	for _, w := range n.all {
		if err := w.writeAll(&e); err != nil {
			return err
		}
	}
	return nil
}

// sourceOutput is what the source at the head of the chain emits into. Its
// mutex is the checkpoint lock: it is held around every Emit, EmitWatermark
// and MarkIdle, and by the task's control goroutine while it snapshots the
// chain and injects a barrier, so a barrier always falls between two
// records, and the record being emitted when a checkpoint is triggered is
// fully processed before it.
//
// A source whose position changes outside those calls (a Kafka source
// advances its offset, datagen its index) takes the lock itself around the
// change and the Emit that goes with it: it asserts out to
// interface{ CheckpointLock() sync.Locker }. Calls made while it holds the
// lock do not take it again.
type sourceOutput struct {
	*chainNode
	done <-chan struct{}
	mu   sync.Mutex
	// held: the source goroutine holds mu through CheckpointLock. Only that
	// goroutine reads or writes it.
	held bool
	// suspended is non-nil after a stop-with-savepoint barrier went out,
	// until the savepoint completes (ended) or is aborted (the source
	// resumes); it is closed then. Emits wait meanwhile. Guarded by mu.
	suspended chan struct{}
	// ended: the stop-with-savepoint completed; nothing may follow its
	// barrier. Guarded by mu.
	ended bool
	// parked: the source goroutine waits in lock for a suspension to end.
	// Guarded by mu.
	parked bool
	// idle: the source marked itself idle last. Guarded by mu.
	idle bool
}

// errSourceStopped is what Emit returns after a stop-with-savepoint barrier.
var errSourceStopped = errors.New("source stopped after a stop-with-savepoint barrier")

// lock takes the checkpoint lock unless the source holds it, and waits
// while the source is suspended by a stop-with-savepoint.
func (o *sourceOutput) lock() bool {
	locked := !o.held
	if locked {
		o.mu.Lock()
	}
	for o.suspended != nil {
		// Letting go of the lock here is safe also when the source holds
		// it (its position may count the record in hand already): while
		// the source is parked here the control goroutine takes no
		// snapshot, also not in the moment between a resume and this
		// goroutine taking the lock again.
		ch := o.suspended
		o.parked = true
		o.mu.Unlock()
		select {
		case <-ch:
		case <-o.done:
		}
		o.mu.Lock()
		o.parked = false
		select {
		case <-o.done:
			return locked
		default:
		}
	}
	return locked
}

// Emit implements dataflow.Output.
func (o *sourceOutput) Emit(r *dataflow.Record) error {
	locked := o.lock()
	err := o.emit(r)
	if locked {
		o.mu.Unlock()
	}
	return err
}

func (o *sourceOutput) emit(r *dataflow.Record) error {
	if o.ended {
		return errSourceStopped
	}
	select {
	case <-o.done:
		return o.t.ctx.Err()
	default:
	}
	o.t.counters.RecordsIn.Add(1)
	return o.chainNode.Emit(r)
}

// EmitWatermark implements dataflow.Output.
func (o *sourceOutput) EmitWatermark(wm int64) error {
	locked := o.lock()
	var err error
	if o.ended {
		err = errSourceStopped
	} else {
		if wm < dataflow.MaxWatermark {
			o.t.counters.SetWatermark(wm)
		}
		err = o.chainNode.EmitWatermark(wm)
	}
	if locked {
		o.mu.Unlock()
	}
	return err
}

// MarkIdle implements dataflow.SourceOutput.
func (o *sourceOutput) MarkIdle(idle bool) error {
	locked := o.lock()
	var err error
	if o.ended {
		err = errSourceStopped
	} else {
		err = o.t.broadcast(&dataflow.Element{Kind: dataflow.KindIdle, Idle: idle})
		if err == nil {
			o.idle = idle
		}
	}
	if locked {
		o.mu.Unlock()
	}
	return err
}

// CheckpointLock returns the checkpoint lock for the source goroutine.
func (o *sourceOutput) CheckpointLock() sync.Locker { return sourceLock{o} }

type sourceLock struct{ o *sourceOutput }

func (l sourceLock) Lock() {
	l.o.mu.Lock()
	l.o.held = true
}

func (l sourceLock) Unlock() {
	l.o.held = false
	l.o.mu.Unlock()
}

// discard is the Output of operators closed on cancellation or failure.
type discard struct{}

func (discard) Emit(*dataflow.Record) error             { return nil }
func (discard) EmitSide(string, *dataflow.Record) error { return nil }
func (discard) EmitWatermark(int64) error               { return nil }
