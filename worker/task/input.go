package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

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

// runSource runs the source until it ends or fails.
func (t *task) runSource(ctx context.Context) error {
	out := sourceOutput{chainNode: t.nodes[0], done: ctx.Done()}
	if err := t.source.Run(ctx, out); err != nil {
		return wrapNode(t.nodes[0].name, err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return t.nodes[0].EmitWatermark(dataflow.MaxWatermark)
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

// runGate reads the input gate until every channel has ended.
func (t *task) runGate(ctx context.Context) error {
	head := t.nodes[0]
	v := newValve(t.gate.NumChannels())
	// TODO(checkpoints): barriers are only passed through, forwarded once
	// they arrived on every open channel, without blocking channels
	// (no alignment, no snapshot). The "checkpoints" issue aligns them with
	// gate.Block/Unblock and snapshots the chain.
	type pendingBarrier struct {
		b    dataflow.Barrier
		seen map[int]bool
	}
	pending := map[int64]*pendingBarrier{}
	forwardBarriers := func() error {
		ids := make([]int64, 0, len(pending))
		for id := range pending {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			p := pending[id]
			complete := true
			for ch, c := range v.chans {
				if !c.ended && !p.seen[ch] {
					complete = false
					break
				}
			}
			if !complete {
				continue
			}
			delete(pending, id)
			if err := t.broadcast(&dataflow.Element{Kind: dataflow.KindBarrier, Barrier: p.b}); err != nil {
				return err
			}
		}
		return nil
	}
	advance := func() error {
		if wm, ok := v.advance(); ok {
			if err := head.processWatermark(wm); err != nil {
				return err
			}
		}
		if idle, changed := v.idleChange(); changed {
			return t.broadcast(&dataflow.Element{Kind: dataflow.KindIdle, Idle: idle})
		}
		return nil
	}
	for {
		ch, batch, err := t.gate.Next(ctx)
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
				p := pending[e.Barrier.ID]
				if p == nil {
					p = &pendingBarrier{b: e.Barrier, seen: map[int]bool{}}
					pending[e.Barrier.ID] = p
				}
				p.seen[ch] = true
				if err := forwardBarriers(); err != nil {
					return err
				}
			case dataflow.KindEndOfStream:
				v.chans[ch].ended = true
				if err := advance(); err != nil {
					return err
				}
				if err := forwardBarriers(); err != nil {
					return err
				}
			}
		}
	}
	if v.emitted < dataflow.MaxWatermark {
		return head.processWatermark(dataflow.MaxWatermark)
	}
	return nil
}
