package task

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
)

// idleSource emits n records, then nothing until cancelled.
type idleSource struct{ n int }

func (s *idleSource) Open(*dataflow.Context) error { return nil }
func (s *idleSource) Close() error                 { return nil }
func (s *idleSource) Run(ctx context.Context, out dataflow.SourceOutput) error {
	for i := range s.n {
		r := dataflow.Record{Key: fmt.Sprint("k", i), Fields: dataflow.FieldsOf(map[string]any{"i": int64(i)})}
		if err := out.Emit(&r); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// timerOp registers a processing-time timer 50 ms after each record (by
// the context's clock) and records when it fired. Its fields are not
// synchronized: Process and OnProcessingTime must run on the task
// goroutine (the race detector checks).
type timerOp struct {
	ctx     *dataflow.Context
	pending []int64
	fired   []int64
	seen    *atomic.Int64
	report  func(fired []int64)
}

func (o *timerOp) Open(ctx *dataflow.Context) error { o.ctx = ctx; return nil }
func (o *timerOp) Close(dataflow.Output) error      { return nil }
func (o *timerOp) Process(r *dataflow.Record, out dataflow.Output) error {
	o.pending = append(o.pending, o.ctx.Now()+50)
	o.seen.Add(1)
	return nil
}
func (o *timerOp) NextProcessingTime() (int64, bool) {
	if len(o.pending) == 0 {
		return 0, false
	}
	return o.pending[0], true
}
func (o *timerOp) OnProcessingTime(now int64, out dataflow.Output) error {
	for len(o.pending) > 0 && o.pending[0] <= now {
		o.fired = append(o.fired, now)
		o.pending = o.pending[1:]
	}
	o.report(append([]int64(nil), o.fired...))
	return nil
}

// Processing-time timers fire on the task goroutine by the injected clock,
// while no input arrives.
func TestProcessingTimeTimersFireWhileIdle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := startWorker(t, "A")
	g := &graph.Graph{}
	src := vertex("src", 1, srcNode("src"))
	op := vertex("op", 1, opNode("op"))
	g.Vertices = []*graph.Vertex{src, op}
	connect(g, src, "src", "", op, dataflow.Rebalance)
	var clock atomic.Int64
	clock.Store(1_000)
	var mu sync.Mutex
	var fired []int64
	var seen atomic.Int64
	b := &fakeBuilder{
		sources: map[string]func(*dataflow.Context) dataflow.Source{"src": func(*dataflow.Context) dataflow.Source { return &idleSource{n: 3} }},
		ops: map[string]func(*dataflow.Context) dataflow.Operator{"op": func(*dataflow.Context) dataflow.Operator {
			return &timerOp{seen: &seen, report: func(f []int64) { mu.Lock(); fired = f; mu.Unlock() }}
		}},
	}
	addrs := map[string][]Address{"src": {{WorkerID: "A", DataAddr: w.addr}}, "op": {{WorkerID: "A", DataAddr: w.addr}}}
	done := make(chan error, 2)
	for _, v := range g.Vertices {
		d := Deployment{ID: ID{JobID: "j", Attempt: 1, VertexID: v.ID}, Graph: g, Placements: addrs, LocalWorkerID: "A"}
		go func() {
			done <- Run(ctx, d, Env{Builder: b, Exchange: w.x, Now: clock.Load}, &dataflow.Counters{})
		}()
	}
	get := func() []int64 { mu.Lock(); defer mu.Unlock(); return fired }
	// The records arrive (timers at 1050); nothing is due until the clock
	// moves, and then the task's tick fires them with no input arriving.
	eventually(t, 10*time.Second, func() bool { return seen.Load() == 3 }, "the three records")
	clock.Store(1_049) // a tick now must not fire them (checked below: every firing is at 1050)
	clock.Store(1_050)
	eventually(t, 10*time.Second, func() bool { return len(get()) == 3 }, "the three timers to fire at 1050")
	for _, f := range get() {
		if f != 1_050 {
			t.Fatalf("fired at %v, want 1050 (the injected clock)", get())
		}
	}
	cancel()
	for range 2 {
		<-done
	}
}
