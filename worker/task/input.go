package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/worker/exchange"
)

// openGate registers one channel per upstream subtask and input edge: for
// a forward edge only from the subtask with the same index.
func (t *task) openGate() error {
	self := t.d.ID.Subtask
	var edges []exchange.EdgeInputs
	for _, idx := range t.v.Inputs {
		if idx < 0 || idx >= len(t.g.Edges) || t.g.Edges[idx] == nil {
			return fmt.Errorf("vertex %q: input edge %d not in the graph", t.v.ID, idx)
		}
		e := t.g.Edges[idx]
		up := t.g.Vertex(e.From)
		if up == nil || up.Parallelism < 1 {
			return fmt.Errorf("edge %d: upstream vertex %q not in the graph", idx, e.From)
		}
		in := exchange.EdgeInputs{Edge: e.Index, ToSubtask: self}
		if e.Partitioning == dataflow.Forward {
			if up.Parallelism != t.v.Parallelism {
				return fmt.Errorf("edge %d: forward from parallelism %d to %d", idx, up.Parallelism, t.v.Parallelism)
			}
			in.FromSubtasks = []int{self}
		} else {
			for i := range up.Parallelism {
				in.FromSubtasks = append(in.FromSubtasks, i)
			}
		}
		edges = append(edges, in)
	}
	g, err := t.x.OpenInputGate(t.d.ID.JobID, t.d.ID.Attempt, edges)
	if err != nil {
		return err
	}
	t.gate = g
	return nil
}

// runSource runs the source until it ends or fails. Checkpoint commands
// are carried out by a control goroutine under the source's checkpoint lock
// (see sourceOutput), so a barrier is injected between two records also
// while the source is idle or blocked.
func (t *task) runSource(ctx context.Context) error {
	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	out := &sourceOutput{chainNode: t.nodes[0], done: srcCtx.Done()}
	t.srcOut, t.stopSource = out, stopSource

	var ctlErr error
	ctlDone := make(chan struct{})
	ctlCtx, stopCtl := context.WithCancel(ctx)
	go func() {
		defer close(ctlDone)
		ctlErr = t.sourceControl(ctlCtx, out)
		if ctlErr != nil {
			stopSource()
		}
	}()
	err := t.source.Run(srcCtx, out)
	if err == nil {
		// A stop-with-savepoint barrier may have gone out after the last
		// record: nothing may follow it until the savepoint completes
		// (the source stopped; no final watermark) or is aborted (the
		// source ends normally). lock waits for that, as Emit does.
		out.lock()
	} else {
		out.mu.Lock()
	}
	t.sourceDone = true
	var wait chan struct{}
	if err == nil && srcCtx.Err() == nil && out.suspended == nil && t.endsWithCheckpoint() {
		// End of input: the final watermark goes out now, then the task
		// takes part in checkpoints (barriers marked end of input) until
		// one that every subtask took so completes. Only then does the
		// stream end: what the sinks wrote after their last checkpoint
		// is committed by that one instead of on close, where a restart
		// before the job finishes would write it again.
		if out.idle {
			// An idle channel's watermark holds nothing back: the
			// windows would fire only at end of stream, after the final
			// checkpoint.
			err = t.broadcast(&dataflow.Element{Kind: dataflow.KindIdle, Idle: false})
			out.idle = false
		}
		if err == nil {
			err = t.nodes[0].EmitWatermark(dataflow.MaxWatermark)
		}
		if err == nil {
			wait = make(chan struct{})
			t.inputEnded = wait
		}
	}
	out.mu.Unlock()
	if wait != nil {
		if t.env.InputEnded != nil {
			t.env.InputEnded()
		}
		select {
		case <-wait:
		case <-ctlDone: // the control loop failed
		case <-ctx.Done():
		}
	}
	stopCtl()
	<-ctlDone
	switch {
	case ctlErr != nil:
		return ctlErr
	case ctx.Err() != nil:
		return ctx.Err()
	case t.stopping:
		// Stopped after a stop-with-savepoint barrier. The final
		// watermark is not emitted (Flink's stop without --drain): the
		// windows' state is in the savepoint and fires after a restore.
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errSourceStopped) {
			return wrapNode(t.nodes[0].name, err)
		}
		return nil
	case err != nil:
		return wrapNode(t.nodes[0].name, err)
	case wait != nil:
		return nil // the final watermark went out before the wait
	}
	return t.nodes[0].EmitWatermark(dataflow.MaxWatermark)
}

// endsWithCheckpoint reports whether a source waits for a final checkpoint
// at the end of its input: when the job takes periodic checkpoints.
func (t *task) endsWithCheckpoint() bool {
	return t.d.Control != nil && t.d.CheckpointDir != "" && t.g.Job != nil && t.g.Job.Checkpoint != nil
}

// sourceControl takes the task's checkpoint commands and carries them out
// under the checkpoint lock until ctx ends or one fails.
func (t *task) sourceControl(ctx context.Context, out *sourceOutput) error {
	ctl := t.d.Control
	if ctl == nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ctl.wake:
		}
		for _, cmd := range ctl.take() {
			out.mu.Lock()
			err := t.command(cmd)
			out.mu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// inputState is what the task knows about one input channel.
type inputState struct {
	wm    int64
	idle  bool
	ended bool
}

// valve combines the input channels' watermarks and idleness into the
// task's: the minimum watermark over the active channels, forwarded only
// when it advances; idle when every open channel is idle.
type valve struct {
	chans   []inputState
	emitted int64
	idle    bool
}

func newValve(n int) *valve {
	v := &valve{chans: make([]inputState, n), emitted: math.MinInt64}
	for i := range v.chans {
		v.chans[i].wm = math.MinInt64
	}
	return v
}

// combined returns the minimum watermark over open, active channels.
func (v *valve) combined() (int64, bool) {
	wm, ok := int64(math.MaxInt64), false
	for _, c := range v.chans {
		if c.ended || c.idle {
			continue
		}
		wm, ok = min(wm, c.wm), true
	}
	return wm, ok
}

// advance returns the watermark to forward, if any.
func (v *valve) advance() (int64, bool) {
	wm, ok := v.combined()
	if !ok || wm <= v.emitted {
		return 0, false
	}
	v.emitted = wm
	return wm, true
}

// idleChange returns the task's new idleness when it changed.
func (v *valve) idleChange() (idle, changed bool) {
	open, idleCount := 0, 0
	for _, c := range v.chans {
		if !c.ended {
			open++
			if c.idle {
				idleCount++
			}
		}
	}
	now := open > 0 && idleCount == open
	if open == 0 || now == v.idle {
		return v.idle, false
	}
	v.idle = now
	return now, true
}

// runGate reads the input gate until every channel has ended, aligning
// checkpoint barriers (see aligner) and taking the coordinator's commands
// from the task's Control between two batches.
func (t *task) runGate(ctx context.Context) error {
	head := t.nodes[0]
	v := newValve(t.gate.NumChannels())
	t.align = newAligner(t.gate.NumChannels(), t.exactlyOnce, t.gate.Block, t.gate.Unblock)
	ended := func(ch int) bool { return v.chans[ch].ended }
	ctl := t.d.Control
	if ctl != nil {
		ctl.setWaker(t.gate.Wake)
		defer ctl.setWaker(nil)
	}
	aligned := func() error {
		// Unblocking first is safe: nothing is read before the barrier
		// has gone out.
		b := t.align.cur
		return t.checkpoint(b, t.align.finish())
	}
	advance := func() error {
		if t.stopped() {
			// After a stop-with-savepoint barrier nothing may change
			// downstream: the savepoint holds the state. The stopped
			// sources end one by one, and the first end would leave the
			// other channels' watermarks as the minimum and fire windows
			// that the job restored from the savepoint fires again.
			return nil
		}
		if wm, ok := v.advance(); ok {
			if wm < dataflow.MaxWatermark {
				t.counters.SetWatermark(wm)
			}
			if err := head.processWatermark(wm); err != nil {
				return err
			}
		}
		if idle, changed := v.idleChange(); changed {
			return t.broadcast(&dataflow.Element{Kind: dataflow.KindIdle, Idle: idle})
		}
		return nil
	}
	// A head that reads several inputs apart (a join) is told which one
	// each record came from: the position of its channel's edge among the
	// vertex's inputs, which are in the order of the head node's inputs.
	var inputOf []int
	ip, _ := head.op.(dataflow.InputProcessor)
	if ip != nil {
		inputOf = make([]int, t.gate.NumChannels())
		for ch := range inputOf {
			inputOf[ch] = slices.Index(t.v.Inputs, t.gate.Channel(ch).Edge)
		}
	}
	pt := t.startProcTime(t.gate.Wake)
	defer pt.close()
	for {
		for _, cmd := range ctl.take() {
			if err := t.command(cmd); err != nil {
				return err
			}
		}
		if !t.stopped() {
			// After a stop-with-savepoint barrier nothing may change:
			// the savepoint holds the timers, a restore fires them.
			if err := pt.fire(); err != nil {
				return err
			}
		}
		waiting := t.counters.IdleStart()
		ch, batch, err := t.gate.Next(ctx)
		t.counters.IdleEnd(waiting)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for i := range batch {
			e := &batch[i]
			switch e.Kind {
			case dataflow.KindRecord:
				t.counters.RecordsIn.Add(1)
				if ip != nil {
					if err := head.processInput(ip, inputOf[ch], &e.Record); err != nil {
						return err
					}
					continue
				}
				if err := head.process(&e.Record); err != nil {
					return err
				}
			case dataflow.KindWatermark:
				if e.Watermark > v.chans[ch].wm {
					v.chans[ch].wm = e.Watermark
				}
				if err := advance(); err != nil {
					return err
				}
			case dataflow.KindIdle:
				v.chans[ch].idle = e.Idle
				if err := advance(); err != nil {
					return err
				}
			case dataflow.KindBarrier:
				if t.align.barrier(ch, e.Barrier, ended) {
					if err := aligned(); err != nil {
						return err
					}
				}
			case dataflow.KindEndOfStream:
				v.chans[ch].ended = true
				if err := advance(); err != nil {
					return err
				}
				if t.align.aligned(ended) {
					if err := aligned(); err != nil {
						return err
					}
				}
			}
		}
	}
	if t.stopped() {
		// Stop with savepoint: the state after the barrier is in the
		// savepoint; no final watermark, so no window fires twice.
		return nil
	}
	if v.emitted < dataflow.MaxWatermark {
		return head.processWatermark(dataflow.MaxWatermark)
	}
	return nil
}
