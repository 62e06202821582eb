package exchange

import (
	"context"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
)

// TestConcurrentTryFlush writes while a flush timer fires: nothing is lost
// or reordered.
func TestConcurrentTryFlush(t *testing.T) {
	for _, remote := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		x := newExchange(t, WithBuffers(2))
		g, err := x.OpenInputGate("job", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}})
		if err != nil {
			t.Fatal(err)
		}
		var s Sender
		if remote {
			s, err = newExchange(t).Dial(ctx, serve(t, x), chanID("job", 1, 0, 0, 0))
		} else {
			s, err = x.DialLocal(ctx, chanID("job", 1, 0, 0, 0))
		}
		if err != nil {
			t.Fatal(err)
		}
		fctx, stop := context.WithCancel(ctx)
		flusherDone := make(chan struct{})
		go func() {
			defer close(flusherDone)
			for fctx.Err() == nil {
				_ = s.TryFlush(fctx)
			}
		}()
		const n = 20000
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			for i := range n {
				if err := s.Write(ctx, rec(0, i)); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					if err := s.Write(ctx, wm(int64(i))); err != nil {
						t.Error(err)
						return
					}
				}
			}
			_ = s.Write(ctx, wm(n))
			stop()
			<-flusherDone
			_ = s.Write(ctx, eos)
			if err := s.Close(ctx); err != nil {
				t.Error(err)
			}
		}()
		got := drain(t, ctx, g)[0]
		next := 0
		for _, e := range got {
			if e.Kind == dataflow.KindRecord {
				if e.Record.Fields.Get("i") != int64(next) {
					t.Fatalf("remote=%v: record %v, want %d", remote, e.Record.Fields.Get("i"), next)
				}
				next++
			}
		}
		if next != n {
			t.Fatalf("remote=%v: %d records, want %d", remote, next, n)
		}
		// The writer's Close returns once the gate has the end of stream;
		// closing the gate before then would fail it.
		<-writerDone
		g.Close()
	}
}
