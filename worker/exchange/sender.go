package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/weir-stream/weir/dataflow"
	datapb "github.com/weir-stream/weir/proto/data/v1"
)

// Sender is the sending end of one channel. Write, Flush and Close are for
// one goroutine (the task's); TryFlush may be called concurrently from a
// flush timer.
type Sender interface {
	// Write adds e to the pending batch, copying what it needs (the caller
	// may reuse e). It sends the batch when it is full and after every
	// element that is not a record, blocking while the channel has no
	// credit.
	Write(ctx context.Context, e *dataflow.Element) error
	// Flush sends the pending batch, if any.
	Flush(ctx context.Context) error
	// TryFlush sends the pending batch unless another call is busy with
	// the sender (then that call is responsible for progress).
	TryFlush(ctx context.Context) error
	// Close ends the channel. After end of stream was written it flushes
	// and waits until the receiver has taken the whole stream; otherwise
	// it aborts the channel, dropping what is pending, and the receiver
	// sees it as broken. Close is idempotent.
	Close(ctx context.Context) error
}

// SenderOption configures a Sender.
type SenderOption func(*senderConfig)

type senderConfig struct {
	counters     *dataflow.Counters
	batchBytes   int
	batchRecords int
}

// WithCounters counts the time the sender waits for credit into
// counters.BackpressuredNs.
func WithCounters(c *dataflow.Counters) SenderOption {
	return func(s *senderConfig) { s.counters = c }
}

// WithBatchLimits sets when a batch of records is sent: at bytes encoded
// bytes (remote channels) or records records. Defaults 32 KiB and 256
// (1024 for an in-memory channel).
func WithBatchLimits(bytes, records int) SenderOption {
	return func(s *senderConfig) {
		if bytes > 0 {
			s.batchBytes = bytes
		}
		if records > 0 {
			s.batchRecords = records
		}
	}
}

func newSenderConfig(local bool, opts []SenderOption) senderConfig {
	c := senderConfig{batchBytes: DefaultBatchBytes, batchRecords: DefaultBatchRecords}
	if local {
		c.batchRecords = DefaultLocalBatchRecords
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// transport is how a batcher ships a batch: over gRPC or in memory.
type transport interface {
	// acquire waits for a credit, telling blocked the time waited.
	acquire(ctx context.Context, blocked func(time.Duration)) error
	send(b *batcher) error
	close(ctx context.Context, graceful bool) error
}

// batcher is the Sender shared by both transports.
type batcher struct {
	cfg senderConfig
	t   transport

	mu      sync.Mutex
	buf     []byte             // encoded batch (remote)
	elems   []dataflow.Element // batch (local)
	n       int                // elements pending
	encode  bool
	eos     bool
	err     error // sticky: the channel is broken
	closed  bool
	closeCh chan struct{}
}

func newBatcher(cfg senderConfig, t transport, encode bool) *batcher {
	return &batcher{cfg: cfg, t: t, encode: encode, closeCh: make(chan struct{})}
}

func (b *batcher) Write(ctx context.Context, e *dataflow.Element) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if b.closed {
		return fmt.Errorf("%w: write to a closed sender", ErrClosed)
	}
	if b.eos {
		return fmt.Errorf("%w: write after end of stream", ErrProtocol)
	}
	if b.encode {
		var err error
		if b.buf, err = dataflow.AppendElement(b.buf, e); err != nil {
			return err // the element is refused; the channel stays usable
		}
	} else {
		b.elems = append(b.elems, *e)
	}
	b.n++
	if e.Kind == dataflow.KindEndOfStream {
		b.eos = true
	}
	if e.Kind != dataflow.KindRecord || b.n >= b.cfg.batchRecords || len(b.buf) >= b.cfg.batchBytes {
		return b.flushLocked(ctx)
	}
	return nil
}

func (b *batcher) Flush(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked(ctx)
}

func (b *batcher) TryFlush(ctx context.Context) error {
	if !b.mu.TryLock() {
		return nil
	}
	defer b.mu.Unlock()
	return b.flushLocked(ctx)
}

func (b *batcher) flushLocked(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	if b.n == 0 || b.closed {
		return nil
	}
	if err := b.t.acquire(ctx, b.blocked); err != nil {
		if ctx.Err() == nil {
			b.err = err
		}
		return err
	}
	if err := b.t.send(b); err != nil {
		b.err = err
		return err
	}
	b.n = 0
	return nil
}

func (b *batcher) blocked(d time.Duration) {
	if b.cfg.counters != nil {
		b.cfg.counters.BackpressuredNs.Add(int64(d))
	}
}

func (b *batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.err
	}
	graceful := b.eos && b.err == nil
	if graceful {
		if err := b.flushLocked(ctx); err != nil {
			graceful = false
		}
	}
	b.closed = true
	err := b.t.close(ctx, graceful)
	if err != nil && b.err == nil {
		b.err = err
	}
	if graceful {
		return err
	}
	return nil
}

// Dial opens a channel to the Exchange at addr (another worker). The stream
// is set up under ctx (and at most the registration timeout); the Sender
// then lives until Close. Connections are shared per address.
func (x *Exchange) Dial(ctx context.Context, addr string, id *datapb.ChannelID, opts ...SenderOption) (Sender, error) {
	cc, err := x.conn(addr)
	if err != nil {
		return nil, err
	}
	// Setting up the stream waits for the connection; a worker that does
	// not answer within the registration timeout counts as gone.
	ctx, stop := context.WithTimeout(ctx, x.cfg.regTimeout)
	defer stop()
	sctx, cancel := context.WithCancel(context.Background())
	stopAfter := context.AfterFunc(ctx, cancel)
	stream, err := datapb.NewExchangeClient(cc).Channel(sctx, grpc.WaitForReady(true))
	if err == nil {
		err = stream.Send(&datapb.SenderMessage{Msg: &datapb.SenderMessage_Open{Open: id}})
	}
	if !stopAfter() || err != nil {
		cancel()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("exchange: open %s at %s: %w", keyOf(id), addr, err)
	}
	r := &remote{x: x, key: keyOf(id), addr: addr, stream: stream, cancel: cancel,
		credits: newCredits(0), done: make(chan struct{})}
	if !x.goAttach(r.receiveCredits) {
		cancel()
		return nil, ErrClosed
	}
	return newBatcher(newSenderConfig(false, opts), r, true), nil
}

// remote is a channel to another worker over a gRPC stream.
type remote struct {
	x       *Exchange
	key     chanKey
	addr    string
	stream  datapb.Exchange_ChannelClient
	cancel  context.CancelFunc
	credits *credits
	done    chan struct{} // closed when receiveCredits returns
	recvErr error         // why, readable after done
}

func (r *remote) receiveCredits() {
	defer close(r.done)
	for {
		m, err := r.stream.Recv()
		if err != nil {
			r.recvErr = err
			return
		}
		if m.GetCredits() < 0 {
			r.recvErr = fmt.Errorf("%w: negative credit %d", ErrProtocol, m.GetCredits())
			r.cancel()
			return
		}
		r.credits.add(int(m.GetCredits()))
	}
}

func (r *remote) brokenErr() error {
	err := r.recvErr
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s at %s: receiver ended the stream", ErrBroken, r.key, r.addr)
	}
	return fmt.Errorf("%w: %s at %s: %v", ErrBroken, r.key, r.addr, err)
}

func (r *remote) acquire(ctx context.Context, blocked func(time.Duration)) error {
	return r.credits.acquire(ctx, r.done, nil, r.brokenErr, blocked)
}

func (r *remote) send(b *batcher) error {
	f := &datapb.Frame{Elements: b.buf, Count: int32(b.n)}
	// gRPC may read the message after Send returns: never reuse the buffer.
	b.buf = make([]byte, 0, min(cap(b.buf), 2*b.cfg.batchBytes))
	if err := r.stream.Send(&datapb.SenderMessage{Msg: &datapb.SenderMessage_Frame{Frame: f}}); err != nil {
		if errors.Is(err, io.EOF) {
			<-r.done // the real reason comes from Recv
			return r.brokenErr()
		}
		return fmt.Errorf("%w: %s at %s: %v", ErrBroken, r.key, r.addr, err)
	}
	return nil
}

func (r *remote) close(ctx context.Context, graceful bool) error {
	if !graceful {
		r.cancel()
		<-r.done
		return nil
	}
	defer r.cancel()
	if err := r.stream.CloseSend(); err != nil {
		return fmt.Errorf("%w: %s at %s: %v", ErrBroken, r.key, r.addr, err)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancel()
		<-r.done
		return ctx.Err()
	}
	if !errors.Is(r.recvErr, io.EOF) {
		return r.brokenErr()
	}
	return nil
}

// DialLocal opens a channel to an input gate of this Exchange (the
// receiving subtask runs on the same worker), waiting for the gate's
// registration like a remote channel does. Batches are handed over in
// memory without encoding, with the same credits as a remote channel.
func (x *Exchange) DialLocal(ctx context.Context, id *datapb.ChannelID, opts ...SenderOption) (Sender, error) {
	c, err := x.await(ctx, keyOf(id))
	if err != nil {
		return nil, err
	}
	if err := c.attach(); err != nil {
		return nil, err
	}
	return newBatcher(newSenderConfig(true, opts), &local{x: x, c: c}, false), nil
}

// local hands batches to an input gate of the same Exchange.
type local struct {
	x *Exchange
	c *inputChannel
}

func (l *local) acquire(ctx context.Context, blocked func(time.Duration)) error {
	return l.c.credits.acquire(ctx, l.c.gate.done, l.x.closing, func() error {
		return fmt.Errorf("%w: %s: input gate closed", ErrBroken, l.c.key)
	}, blocked)
}

func (l *local) send(b *batcher) error {
	batch := b.elems
	b.elems = l.c.gate.spareBatch(cap(batch))
	if err := l.c.push(batch); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBroken, l.c.key, err)
	}
	return nil
}

func (l *local) close(_ context.Context, graceful bool) error {
	if !graceful {
		l.c.fail(fmt.Errorf("%w: sender aborted", ErrBroken))
	}
	return nil
}
