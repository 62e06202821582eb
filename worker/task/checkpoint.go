package task

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/internal/failpoint"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// DefaultMaxUploads bounds a task's checkpoint uploads in flight.
const DefaultMaxUploads = 2

// capture is the synchronous part of a checkpoint: every stateful node's
// bytes, taken on the task goroutine (or under the source lock).
type capture struct {
	b       dataflow.Barrier
	ops     []opCapture
	syncDur time.Duration
	align   time.Duration
}

type opCapture struct {
	node string
	data []byte
	sum  *dataflow.SnapshotSummary
	// encode, when set, makes data and sum on the upload goroutine
	// (dataflow.AsyncSnapshotter).
	encode func() ([]byte, dataflow.SnapshotSummary, error)
}

// snapshotter returns node i's Snapshotter, if it has state.
func (t *task) snapshotter(i int) (dataflow.Snapshotter, bool) {
	if i == 0 && t.source != nil {
		s, ok := t.source.(dataflow.Snapshotter)
		return s, ok
	}
	s, ok := t.nodes[i].op.(dataflow.Snapshotter)
	return s, ok
}

func (t *task) nodeImpl(i int) any {
	if i == 0 && t.source != nil {
		return t.source
	}
	return t.nodes[i].op
}

// captureChain snapshots every stateful node in chain order.
func (t *task) captureChain(b dataflow.Barrier) (*capture, error) {
	start := time.Now()
	c := &capture{b: b}
	for i, n := range t.nodes {
		s, ok := t.snapshotter(i)
		if !ok {
			continue
		}
		oc := opCapture{node: n.name}
		err := safely(func() (err error) {
			if as, ok := s.(dataflow.AsyncSnapshotter); ok {
				oc.encode, err = as.CaptureSnapshot(b.ID)
				return err
			}
			oc.data, err = s.Snapshot(b.ID)
			return err
		})
		if err != nil {
			return nil, wrapNode(n.name, fmt.Errorf("snapshot for checkpoint %d: %w", b.ID, err))
		}
		if sum, ok := t.nodeImpl(i).(dataflow.SnapshotSummarizer); ok && oc.encode == nil {
			v := sum.SnapshotSummary()
			oc.sum = &v
		}
		c.ops = append(c.ops, oc)
	}
	c.syncDur = time.Since(start)
	return c, nil
}

// checkpoint is a subtask's part of checkpoint b once its input is aligned
// (or, at a source, when triggered): capture the chain, forward the
// barrier, and start persisting the capture. A failed capture declines the
// checkpoint; the barrier is forwarded all the same, so that downstream
// tasks do not wait for it.
func (t *task) checkpoint(b dataflow.Barrier, align time.Duration) error {
	c, err := t.captureChain(b)
	if err != nil {
		t.decline(b.ID, err.Error())
	}
	if err := t.broadcast(&dataflow.Element{Kind: dataflow.KindBarrier, Barrier: b}); err != nil {
		return err
	}
	// A stop barrier makes this subtask end without the final watermark
	// when its input ends; a later checkpoint or an abort of this one
	// (the job goes on) cancels that.
	t.stopID = 0
	if b.Stop && c != nil {
		t.stopID = b.ID
	}
	if c != nil {
		c.align = align
		t.startUpload(c)
	}
	return nil
}

func (t *task) pbID() *controlpb.TaskID {
	return &controlpb.TaskID{JobId: t.d.ID.JobID, Attempt: t.d.ID.Attempt, VertexId: t.d.ID.VertexID, Subtask: int32(t.d.ID.Subtask)}
}

func (t *task) decline(id int64, reason string) {
	t.logger.Warn("declining checkpoint", "checkpoint", id, "reason", reason)
	if t.env.Reporter != nil {
		t.env.Reporter.Decline(&controlpb.CheckpointDecline{Task: t.pbID(), CheckpointId: id, Reason: reason})
	}
}

// startUpload persists c in its own goroutine, unless too many uploads
// are in flight already (then c is declined).
func (t *task) startUpload(c *capture) {
	id := c.b.ID
	max := t.env.MaxUploads
	if max <= 0 {
		max = DefaultMaxUploads
	}
	t.upMu.Lock()
	if t.upClosed {
		t.upMu.Unlock()
		return
	}
	if len(t.uploads) >= max {
		t.upMu.Unlock()
		t.decline(id, fmt.Sprintf("%d checkpoint uploads in flight already (storage too slow?)", max))
		return
	}
	ctx, cancel := context.WithCancel(t.upCtx)
	t.uploads[id] = cancel
	t.upWG.Add(1)
	t.upMu.Unlock()
	go func() {
		defer t.upWG.Done()
		defer func() {
			t.upMu.Lock()
			delete(t.uploads, id)
			t.upMu.Unlock()
			cancel()
		}()
		ack, err := t.upload(ctx, c)
		switch {
		case ctx.Err() != nil:
			// Aborted, or the task was cancelled: nobody waits for it.
		case err != nil:
			t.decline(id, err.Error())
		case t.env.Reporter != nil:
			t.env.Reporter.Ack(ack)
		}
	}()
}

// cancelUpload drops checkpoint id's upload, if one is in flight.
func (t *task) cancelUpload(id int64) {
	t.upMu.Lock()
	if cancel := t.uploads[id]; cancel != nil {
		cancel()
	}
	t.upMu.Unlock()
}

// endUploads waits for the uploads in flight (wait) or abandons them, and
// closes the storage.
func (t *task) endUploads(wait bool) {
	if !wait {
		t.upCancel()
	}
	t.upMu.Lock()
	t.upClosed = true
	t.upMu.Unlock()
	t.upWG.Wait()
	t.upCancel()
	if t.store != nil {
		_ = t.store.Close()
		t.store = nil
	}
}

// writeStore opens the job's checkpoint storage on first use. It is called
// from upload goroutines.
func (t *task) writeStore() (StateStore, error) {
	t.storeMu.Lock()
	defer t.storeMu.Unlock()
	if t.store != nil {
		return t.store, nil
	}
	if t.d.CheckpointDir == "" {
		return nil, errors.New("no checkpoint directory configured for the job")
	}
	root, _ := splitJobDir(t.d.CheckpointDir)
	st, err := t.openStore(root)
	if err != nil {
		return nil, err
	}
	t.store = st
	return st, nil
}

func (t *task) openStore(uri string) (StateStore, error) {
	open := t.env.OpenStore
	if open == nil {
		open = OpenCheckpointStore
	}
	st, err := open(uri)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint storage %s: %w", uri, err)
	}
	return st, nil
}

// upload writes c's state files and builds the acknowledgement.
func (t *task) upload(ctx context.Context, c *capture) (*controlpb.CheckpointAck, error) {
	start := time.Now()
	ack := &controlpb.CheckpointAck{Task: t.pbID(), CheckpointId: c.b.ID, EndOfInput: c.b.EndOfInput}
	var bytes int64
	var dir string
	var st StateStore
	for _, op := range c.ops {
		os := &checkpointpb.OperatorState{Node: op.node}
		if op.encode != nil {
			if err := ctx.Err(); err != nil {
				return nil, err // aborted or cancelled: nobody waits for the encoding
			}
			var sum dataflow.SnapshotSummary
			err := safely(func() (err error) {
				op.data, sum, err = op.encode()
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("snapshot of node %s for checkpoint %d: %w", op.node, c.b.ID, err)
			}
			op.sum = &sum
		}
		if len(op.data) > 0 {
			if st == nil {
				var err error
				if st, err = t.writeStore(); err != nil {
					return nil, err
				}
				_, job := splitJobDir(t.d.CheckpointDir)
				if c.b.Savepoint {
					dir = checkpoint.SavepointDir(job, c.b.ID)
				} else {
					dir = checkpoint.CheckpointDir(job, c.b.ID)
				}
			}
			name := checkpoint.StateFileName(t.d.ID.VertexID, t.d.ID.Subtask, op.node)
			if err := failpoint.Inject(failpoint.TaskStateUpload); err != nil {
				return nil, fmt.Errorf("write state of node %s to %s: %w", op.node, dir+"/"+name, err)
			}
			h, err := st.WriteState(ctx, dir, name, op.data)
			if err != nil {
				return nil, fmt.Errorf("write state of node %s to %s: %w", op.node, dir+"/"+name, err)
			}
			os.Handle = h
			bytes += int64(len(op.data))
		}
		if s := op.sum; s != nil {
			os.Keys = s.Keys
			for _, o := range s.Offsets {
				os.Offsets = append(os.Offsets, &checkpointpb.KafkaOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset})
			}
			for _, p := range s.PendingTransactions {
				os.PendingTransactions = append(os.PendingTransactions, &checkpointpb.SinkTransaction{
					TransactionalId: p.TransactionalID, ProducerId: p.ProducerID, Epoch: int32(p.Epoch), CheckpointId: p.CheckpointID})
			}
		}
		ack.Operators = append(ack.Operators, os)
	}
	ack.Stats = &checkpointpb.SubtaskStats{
		SyncMs:      c.syncDur.Milliseconds(),
		AsyncMs:     time.Since(start).Milliseconds(),
		AlignmentMs: c.align.Milliseconds(),
		Bytes:       bytes,
	}
	return ack, nil
}

// command carries out one checkpoint command on the task goroutine (or
// under the source lock). An error fails the task.
func (t *task) command(cmd Command) error {
	switch cmd.Kind {
	case CmdTrigger:
		if t.source == nil {
			t.decline(cmd.CheckpointID, "not a source subtask: checkpoints are triggered at sources")
			return nil
		}
		if t.srcOut == nil || t.srcOut.ended || (t.sourceDone && t.inputEnded == nil) {
			t.decline(cmd.CheckpointID, "the source has ended")
			return nil
		}
		if t.srcOut.suspended != nil || t.srcOut.parked {
			t.decline(cmd.CheckpointID, "the source is stopping with a savepoint, or resuming after an aborted one")
			return nil
		}
		if cmd.CheckpointID <= t.lastTrigger {
			// A coordinator that took the running job over may reuse an id
			// the previous one triggered but never recorded: declining
			// makes it abort this one and go on with the next id.
			t.decline(cmd.CheckpointID, fmt.Sprintf("checkpoint %d is not above %d, the last barrier this source injected", cmd.CheckpointID, t.lastTrigger))
			return nil
		}
		t.lastTrigger = cmd.CheckpointID
		b := dataflow.Barrier{ID: cmd.CheckpointID, Timestamp: cmd.Timestamp, Savepoint: cmd.Savepoint, Stop: cmd.Stop,
			EndOfInput: t.inputEnded != nil}
		if err := t.checkpoint(b, 0); err != nil {
			return err
		}
		if t.stopID != 0 {
			// Emit nothing more until the savepoint completes (then end)
			// or is aborted (then resume), as Flink's synchronous
			// savepoint: a failed savepoint leaves the job running.
			t.srcOut.suspended = make(chan struct{})
		}
	case CmdComplete:
		for i, n := range t.nodes {
			l, ok := t.nodeImpl(i).(dataflow.CheckpointListener)
			if !ok || !n.opened || n.closed {
				continue
			}
			err := safely(func() error { return l.NotifyCheckpointComplete(t.ctx, cmd.CheckpointID) })
			if err != nil {
				return wrapNode(n.name, fmt.Errorf("checkpoint %d complete: %w", cmd.CheckpointID, err))
			}
		}
		if o := t.srcOut; o != nil && o.suspended != nil && cmd.CheckpointID == t.stopID {
			o.ended = true
			close(o.suspended)
			o.suspended = nil
			t.stopping = true
			t.stopSource()
		}
		if t.inputEnded != nil && (cmd.Final || (t.stopID != 0 && cmd.CheckpointID == t.stopID)) {
			close(t.inputEnded) // the source's wait for the final checkpoint is over
			t.inputEnded = nil
		}
	case CmdAbort:
		t.cancelUpload(cmd.CheckpointID)
		if t.align != nil {
			t.align.abort(cmd.CheckpointID)
		}
		if cmd.CheckpointID == t.stopID {
			t.stopID = 0
			if o := t.srcOut; o != nil && o.suspended != nil {
				close(o.suspended)
				o.suspended = nil
			}
		}
	}
	return nil
}

// declineQueued declines the triggers still queued when the task ends.
func (t *task) declineQueued() {
	for _, cmd := range t.d.Control.close() {
		if cmd.Kind == CmdTrigger {
			t.decline(cmd.CheckpointID, "the task has ended")
		}
	}
}
