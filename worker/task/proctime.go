package task

import (
	"sync"
	"time"

	"github.com/weir-stream/weir/dataflow"
)

// procTime fires the processing-time timers of a chain's operators that
// have them (dataflow.ProcessingTimeHandler) on the task goroutine, between
// two input batches: a ticker wakes the input gate at least every
// dataflow.ProcessingTimeTick, so timers fire also when no input arrives.
type procTime struct {
	nodes []*chainNode
	now   func() int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// startProcTime returns nil when no operator of the chain has
// processing-time timers.
func (t *task) startProcTime(wake func()) *procTime {
	var nodes []*chainNode
	for _, n := range t.nodes {
		if _, ok := n.op.(dataflow.ProcessingTimeHandler); ok {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	p := &procTime{nodes: nodes, now: func() int64 { return time.Now().UnixMilli() }, stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tk := time.NewTicker(dataflow.ProcessingTimeTick * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
				wake()
			}
		}
	}()
	return p
}

// fire calls the operators whose earliest timer is due.
func (p *procTime) fire() error {
	if p == nil {
		return nil
	}
	var now int64 // read once, and only when a timer is pending
	for _, n := range p.nodes {
		h := n.op.(dataflow.ProcessingTimeHandler)
		next, ok := h.NextProcessingTime()
		if !ok {
			continue
		}
		if now == 0 {
			now = p.now()
		}
		if next <= now {
			if err := wrapNode(n.name, h.OnProcessingTime(now, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// close stops the ticker and waits for it; idempotent on nil.
func (p *procTime) close() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
}
