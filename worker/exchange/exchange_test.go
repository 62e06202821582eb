package exchange

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/internal/tlsconf"
	"github.com/weir-stream/weir/internal/tlsconf/tlstest"
	datapb "github.com/weir-stream/weir/proto/data/v1"
)

func chanID(job string, attempt int64, edge, from, to int32) *datapb.ChannelID {
	return &datapb.ChannelID{JobId: job, Attempt: attempt, Edge: edge, FromSubtask: from, ToSubtask: to}
}

func rec(from, i int) *dataflow.Element {
	return &dataflow.Element{Kind: dataflow.KindRecord, Record: dataflow.Record{
		Key:    int64(i),
		Time:   int64(i),
		Fields: dataflow.FieldsOf(map[string]any{"from": int64(from), "i": int64(i), "s": "payload"}),
	}}
}

func wm(t int64) *dataflow.Element {
	return &dataflow.Element{Kind: dataflow.KindWatermark, Watermark: t}
}

var eos = &dataflow.Element{Kind: dataflow.KindEndOfStream}

// drain reads a gate to its end and returns the elements per channel.
func drain(t testing.TB, ctx context.Context, g *InputGate) [][]dataflow.Element {
	t.Helper()
	out := make([][]dataflow.Element, g.NumChannels())
	for {
		ch, batch, err := g.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(batch) == 0 {
			t.Fatal("empty batch")
		}
		for i, e := range batch[:len(batch)-1] {
			if e.Kind != dataflow.KindRecord {
				t.Fatalf("channel %d: %v at %d of a batch of %d", ch, e.Kind, i, len(batch))
			}
		}
		out[ch] = append(out[ch], batch...)
	}
}

func checkStream(t testing.TB, ch int, got []dataflow.Element, from, n int) {
	t.Helper()
	if len(got) != n+2 {
		t.Fatalf("channel %d: %d elements, want %d", ch, len(got), n+2)
	}
	for i := range n {
		r := got[i].Record
		if got[i].Kind != dataflow.KindRecord || r.Fields.Get("i") != int64(i) || r.Fields.Get("from") != int64(from) || r.Key != int64(i) {
			t.Fatalf("channel %d element %d: %+v", ch, i, got[i])
		}
	}
	if got[n].Kind != dataflow.KindWatermark || got[n].Watermark != int64(n) {
		t.Fatalf("channel %d: want watermark %d, got %+v", ch, n, got[n])
	}
	if got[n+1].Kind != dataflow.KindEndOfStream {
		t.Fatalf("channel %d: want end of stream, got %+v", ch, got[n+1])
	}
}

func send(ctx context.Context, s Sender, from, n int) error {
	for i := range n {
		if err := s.Write(ctx, rec(from, i)); err != nil {
			return err
		}
	}
	if err := s.Write(ctx, wm(int64(n))); err != nil {
		return err
	}
	if err := s.Write(ctx, eos); err != nil {
		return err
	}
	return s.Close(ctx)
}

func TestRemoteChannels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recv := newExchange(t)
	addr := serve(t, recv)
	sendX := newExchange(t)

	const n = 5000
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	// Senders connect before the gate is registered: their streams wait.
	for from := range 2 {
		s, err := sendX.Dial(ctx, addr, chanID("job", 1, 0, int32(from), 0))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := send(ctx, s, from, n); err != nil {
				errs <- err
			}
		}()
	}
	g, err := recv.OpenInputGate("job", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0, 1}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := drain(t, ctx, g)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for ch := range 2 {
		checkStream(t, ch, got[ch], g.Channel(ch).From, n)
	}
	// A channel after the stream ended: Next keeps saying EOF.
	if _, _, err := g.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after end: %v", err)
	}
}

func TestLocalChannels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	x := newExchange(t)
	g, err := x.OpenInputGate("job", 1, []EdgeInputs{
		{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 3},
		{Edge: 2, FromSubtasks: []int{1}, ToSubtask: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	const n = 3000
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range 2 {
		key := g.Channel(i)
		s, err := x.DialLocal(ctx, chanID("job", 1, int32(key.Edge), int32(key.From), int32(key.To)))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := send(ctx, s, key.From, n); err != nil {
				errs <- err
			}
		}()
	}
	got := drain(t, ctx, g)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for ch := range 2 {
		checkStream(t, ch, got[ch], g.Channel(ch).From, n)
	}
}

// flowControl checks that a receiver that does not read keeps the sender
// blocked with no more frames buffered than credits, then lets it finish.
func flowControl(t *testing.T, remote bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const buffers = 3
	recv := newExchange(t, WithBuffers(buffers))
	g, err := recv.OpenInputGate("job", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var counters dataflow.Counters
	opts := []SenderOption{WithCounters(&counters), WithBatchLimits(0, 1)} // one record per frame
	var s Sender
	if remote {
		addr := serve(t, recv)
		s, err = newExchange(t).Dial(ctx, addr, chanID("job", 1, 0, 0, 0), opts...)
	} else {
		s, err = recv.DialLocal(ctx, chanID("job", 1, 0, 0, 0), opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.Write(ctx, rec(0, i)); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
		if err := s.Write(ctx, eos); err != nil {
			done <- err
			return
		}
		done <- s.Close(ctx)
	}()
	eventually(t, 5*time.Second, func() bool { return g.Buffered(0) == buffers }, "buffer fills to %d frames", buffers)
	// The next write has no credit: it blocks and nothing more arrives.
	if w := written.Load(); w != buffers {
		t.Fatalf("sender wrote %d frames with %d credits", w, buffers)
	}
	// Consume slowly; the buffer never exceeds the credits.
	count := 0
	for {
		if b := g.Buffered(0); b > buffers {
			t.Fatalf("%d frames buffered, credits %d", b, buffers)
		}
		_, batch, err := g.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			if e.Kind == dataflow.KindRecord {
				if e.Record.Fields.Get("i") != int64(count) {
					t.Fatalf("record %d out of order: %v", count, e.Record.Fields)
				}
				count++
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("received %d records, want %d", count, n)
	}
	if counters.BackpressuredNs.Load() <= 0 {
		t.Fatal("no backpressure time counted")
	}
}

func TestFlowControlRemote(t *testing.T) { flowControl(t, true) }
func TestFlowControlLocal(t *testing.T)  { flowControl(t, false) }

func TestStaleAttemptRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recv := newExchange(t)
	addr := serve(t, recv)
	g, err := recv.OpenInputGate("job", 2, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := recv.OpenInputGate("job", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{1}, ToSubtask: 0}}); !errors.Is(err, ErrStaleAttempt) {
		t.Fatalf("open gate of older attempt: %v", err)
	}
	if _, err := recv.OpenInputGate("job", 2, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("open gate twice: %v", err)
	}
	s, err := newExchange(t).Dial(ctx, addr, chanID("job", 1, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, eos)
	if !errors.Is(err, ErrBroken) || !errContains(err, "older attempt") {
		t.Fatalf("write to a stale channel: %v", err)
	}
	_ = s.Close(ctx)
	if _, err := recv.DialLocal(ctx, chanID("job", 1, 0, 0, 0)); !errors.Is(err, ErrStaleAttempt) {
		t.Fatalf("local dial of a stale channel: %v", err)
	}

	// A channel that waits for its gate is refused once a newer attempt
	// of the job registers.
	waiting, err := newExchange(t).Dial(ctx, addr, chanID("job2", 1, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() { werr <- waiting.Write(ctx, eos) }()
	g2, err := recv.OpenInputGate("job2", 2, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if err := <-werr; !errors.Is(err, ErrBroken) || !errContains(err, "older attempt") {
		t.Fatalf("waiting stale channel: %v", err)
	}
	_ = waiting.Close(ctx)
}

func TestRegistrationTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recv := newExchange(t, WithRegistrationTimeout(50*time.Millisecond))
	addr := serve(t, recv)
	s, err := newExchange(t).Dial(ctx, addr, chanID("job", 1, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, eos)
	if !errors.Is(err, ErrBroken) || !errContains(err, "no input gate registered it within 50ms") {
		t.Fatalf("write to an unregistered channel: %v", err)
	}
	_ = s.Close(ctx)
	if _, err := recv.DialLocal(ctx, chanID("job", 1, 0, 0, 0)); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("local dial: %v", err)
	}
}

func TestAbortedSenderBreaksChannel(t *testing.T) {
	for _, remote := range []bool{true, false} {
		t.Run(map[bool]string{true: "remote", false: "local"}[remote], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			recv := newExchange(t)
			g, err := recv.OpenInputGate("job", 1, []EdgeInputs{{Edge: 4, FromSubtasks: []int{2}, ToSubtask: 1}})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			var s Sender
			if remote {
				s, err = newExchange(t).Dial(ctx, serve(t, recv), chanID("job", 1, 4, 2, 1))
			} else {
				s, err = recv.DialLocal(ctx, chanID("job", 1, 4, 2, 1))
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, wm(5)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(ctx); err != nil { // no end of stream: abort
				t.Fatal(err)
			}
			// An abort may overtake frames in flight; what arrives is in
			// order, and then the channel is broken.
			err = nil
			for err == nil {
				var batch []dataflow.Element
				_, batch, err = g.Next(ctx)
				if err == nil && (len(batch) != 1 || batch[0].Watermark != 5) {
					t.Fatalf("unexpected batch %v", batch)
				}
			}
			if !errors.Is(err, ErrBroken) || !errContains(err, "edge 4 subtask 2->1") {
				t.Fatalf("Next after abort: %v", err)
			}
		})
	}
}

func TestBlockAndFairness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x := newExchange(t, WithBuffers(16))
	g, err := x.OpenInputGate("job", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0, 1, 2}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for from := range 3 {
		s, err := x.DialLocal(ctx, chanID("job", 1, 0, int32(from), 0))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if err := s.Write(ctx, wm(int64(i))); err != nil { // one frame each
				t.Fatal(err)
			}
		}
	}
	// Fair: the channels take turns.
	for i := range 6 {
		ch, _, err := g.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ch != i%3 {
			t.Fatalf("batch %d from channel %d, want %d", i, ch, i%3)
		}
	}
	// Blocked channels are not read.
	g.Block(0)
	g.Block(2)
	for range 2 {
		ch, _, err := g.Next(ctx)
		if err != nil || ch != 1 {
			t.Fatalf("Next with 0 and 2 blocked: channel %d, %v", ch, err)
		}
	}
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if _, _, err := g.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with only blocked data: %v", err)
	}
	g.Unblock(2)
	if ch, _, err := g.Next(ctx); err != nil || ch != 2 {
		t.Fatalf("after Unblock(2): channel %d, %v", ch, err)
	}
}

func TestCloseReleasesWaiters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recv := New(nil, WithBuffers(1))
	addr := serve(t, recv)
	g, err := recv.OpenInputGate("job", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0, 1}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	sendX := New(nil)
	s, err := sendX.Dial(ctx, addr, chanID("job", 1, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := recv.DialLocal(ctx, chanID("job", 1, 0, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	go func() { // blocks on credit after the first frame
		for {
			if err := s.Write(ctx, wm(1)); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() {
		for {
			if err := ls.Write(ctx, wm(1)); err != nil {
				errs <- err
				return
			}
		}
	}()
	eventually(t, 5*time.Second, func() bool { return g.Buffered(0) == 1 && g.Buffered(1) == 1 }, "buffers full")
	// A second gate nobody feeds: its Next waits until the exchange closes.
	g2, err := recv.OpenInputGate("job", 1, []EdgeInputs{{Edge: 1, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _, err := g2.Next(ctx)
		errs <- err
	}()
	recv.Close()
	for range 3 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("nil error after Close")
			}
		case <-ctx.Done():
			t.Fatal("a waiter was not released by Close")
		}
	}
	_ = s.Close(ctx)
	_ = ls.Close(ctx)
	sendX.Close()
	g.Close()
	g2.Close()
}

// benchChannel measures records per second through one channel.
func benchChannel(b *testing.B, remote bool) { benchChannelTLS(b, remote, nil) }

// benchChannelTLS is benchChannel with the data plane's mutual TLS on a
// remote channel (nil: plaintext).
func benchChannelTLS(b *testing.B, remote bool, creds *tlsconf.Source) {
	ctx := context.Background()
	recv := New(nil)
	defer recv.Close()
	g, err := recv.OpenInputGate("bench", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	var s Sender
	if remote {
		sendX := New(nil, WithTLS(creds))
		defer sendX.Close()
		var addr string
		if creds != nil {
			addr = serveTLS(b, recv, creds)
		} else {
			addr = serve(b, recv)
		}
		s, err = sendX.Dial(ctx, addr, chanID("bench", 1, 0, 0, 0))
	} else {
		s, err = recv.DialLocal(ctx, chanID("bench", 1, 0, 0, 0))
	}
	if err != nil {
		b.Fatal(err)
	}
	e := dataflow.Element{Kind: dataflow.KindRecord, Record: dataflow.Record{
		Key: "user-1234", Time: 1_700_000_000_000,
		Fields: dataflow.FieldsOf(map[string]any{"user": "user-1234", "path": "/api/v1/items", "status": int64(200), "bytes": int64(5123), "latency_ms": 12.5}),
	}}
	done := make(chan int)
	go func() {
		n := 0
		for {
			_, batch, err := g.Next(ctx)
			if err != nil {
				done <- n
				return
			}
			n += len(batch)
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := s.Write(ctx, &e); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Write(ctx, eos); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if n := <-done; n != b.N+1 {
		b.Fatalf("received %d elements, want %d", n, b.N+1)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

func BenchmarkRemoteChannel(b *testing.B) { benchChannel(b, true) }
func BenchmarkLocalChannel(b *testing.B)  { benchChannel(b, false) }

// BenchmarkRemoteChannelTLS: the cost of the data plane's mutual TLS next
// to BenchmarkRemoteChannel.
func BenchmarkRemoteChannelTLS(b *testing.B) {
	benchChannelTLS(b, true, tlstest.Source(b, tlstest.New(b).Cluster))
}

// rawChannel opens a Channel stream by hand, to break the protocol.
func rawChannel(t *testing.T, ctx context.Context, addr string) datapb.Exchange_ChannelClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	st, err := datapb.NewExchangeClient(cc).Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func frame(t *testing.T, es ...*dataflow.Element) *datapb.SenderMessage {
	var b []byte
	for _, e := range es {
		var err error
		if b, err = dataflow.AppendElement(b, e); err != nil {
			t.Fatal(err)
		}
	}
	return &datapb.SenderMessage{Msg: &datapb.SenderMessage_Frame{Frame: &datapb.Frame{Elements: b, Count: int32(len(es))}}}
}

func TestProtocolViolations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recv := newExchange(t, WithBuffers(1))
	addr := serve(t, recv)
	var gates []*InputGate
	for from := range 3 {
		g, err := recv.OpenInputGate("job", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{from}, ToSubtask: 0}})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		gates = append(gates, g)
	}
	open := func(from int32) *datapb.SenderMessage {
		return &datapb.SenderMessage{Msg: &datapb.SenderMessage_Open{Open: chanID("job", 1, 0, from, 0)}}
	}
	// Channel 0: two frames with one credit.
	st := rawChannel(t, ctx, addr)
	for _, m := range []*datapb.SenderMessage{open(0), frame(t, wm(1)), frame(t, wm(2))} {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	// Channel 1: a corrupt frame.
	st1 := rawChannel(t, ctx, addr)
	bad := &datapb.SenderMessage{Msg: &datapb.SenderMessage_Frame{Frame: &datapb.Frame{Elements: []byte{0x12, 0xff}, Count: 1}}}
	for _, m := range []*datapb.SenderMessage{open(1), bad} {
		if err := st1.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	// Channel 2: a record in the middle of... a barrier before a record.
	st2 := rawChannel(t, ctx, addr)
	mixed := frame(t, &dataflow.Element{Kind: dataflow.KindBarrier, Barrier: dataflow.Barrier{ID: 1}}, rec(2, 0))
	for _, m := range []*datapb.SenderMessage{open(2), mixed} {
		if err := st2.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	// A stream whose first message is not Open.
	st3 := rawChannel(t, ctx, addr)
	if err := st3.Send(frame(t, eos)); err != nil {
		t.Fatal(err)
	}
	if _, err := st3.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("frame before open: %v", err)
	}

	for i, want := range []string{"without credit", "offset 1", "in the middle of a frame"} {
		var err error
		for err == nil {
			_, _, err = gates[i].Next(ctx)
		}
		if !errors.Is(err, ErrProtocol) || !errContains(err, want) {
			t.Fatalf("channel %d: %v", i, err)
		}
	}
}
