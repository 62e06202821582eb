package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/internal/tlsconf"
	datapb "github.com/weir-stream/weir/proto/data/v1"
)

// Defaults.
const (
	DefaultBuffers             = 8
	DefaultRegistrationTimeout = 30 * time.Second
	DefaultBatchBytes          = 32 << 10
	DefaultBatchRecords        = 256
	// DefaultLocalBatchRecords is the batch of an in-memory channel: each
	// batch wakes the receiving goroutine, and 1024 records per wake-up
	// cost 5-9 % less CPU per record than 256 in the datagen benchmark
	// (alternating runs), for at most 8 × 1024 elements (about 1.3 MB)
	// queued per channel.
	DefaultLocalBatchRecords = 1024
	DefaultFlushInterval     = 10 * time.Millisecond
)

// Errors. Every error the package returns wraps one of these.
var (
	// ErrClosed: the exchange or the input gate was closed.
	ErrClosed = errors.New("exchange: closed")
	// ErrStaleAttempt: the channel belongs to an older attempt of the job
	// than one already registered. Fatal for that attempt.
	ErrStaleAttempt = errors.New("exchange: channel belongs to an older attempt of the job")
	// ErrNotRegistered: no input gate registered the channel in time.
	ErrNotRegistered = errors.New("exchange: no task registered the channel")
	// ErrDuplicate: the channel is already registered or connected.
	ErrDuplicate = errors.New("exchange: channel already registered or connected")
	// ErrProtocol: the peer broke the channel protocol (frame without credit,
	// data after end of stream, malformed messages or frames).
	ErrProtocol = errors.New("exchange: protocol violation")
	// ErrBroken: the channel ended before its end of stream, because the
	// sender or its worker failed or was cancelled.
	ErrBroken = dataflow.ErrChannelBroken
)

// toStatus maps the package's errors to gRPC status codes for the peer.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isOurs(err) {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrClosed):
		code = codes.Unavailable
	case errors.Is(err, ErrStaleAttempt):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrNotRegistered):
		code = codes.NotFound
	case errors.Is(err, ErrDuplicate):
		code = codes.AlreadyExists
	case errors.Is(err, ErrProtocol):
		code = codes.InvalidArgument
	case errors.Is(err, ErrBroken):
		code = codes.Aborted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

func isOurs(err error) bool {
	for _, e := range []error{ErrClosed, ErrStaleAttempt, ErrNotRegistered, ErrDuplicate, ErrProtocol, ErrBroken} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Option configures an Exchange.
type Option func(*config)

type config struct {
	buffers       int
	regTimeout    time.Duration
	flushInterval time.Duration
	tls           *tlsconf.Source
}

// WithBuffers sets the receive buffer of every channel, in frames (the
// credits a sender starts with). Default 8.
func WithBuffers(n int) Option { return func(c *config) { c.buffers = n } }

// WithRegistrationTimeout sets how long an incoming channel waits for its
// input gate. Default 30 s.
func WithRegistrationTimeout(d time.Duration) Option { return func(c *config) { c.regTimeout = d } }

// WithFlushInterval sets the interval tasks flush partial batches at.
// Default 10 ms.
func WithFlushInterval(d time.Duration) Option { return func(c *config) { c.flushInterval = d } }

// WithTLS makes the channels this exchange opens to other workers mutual
// TLS with the worker's cluster certificate (the worker serves the
// incoming ones with the same Source). Default: plaintext.
func WithTLS(s *tlsconf.Source) Option { return func(c *config) { c.tls = s } }

// chanKey identifies a channel within an Exchange.
type chanKey struct {
	job      string
	attempt  int64
	edge     int32
	from, to int32
}

func keyOf(id *datapb.ChannelID) chanKey {
	return chanKey{job: id.GetJobId(), attempt: id.GetAttempt(), edge: id.GetEdge(), from: id.GetFromSubtask(), to: id.GetToSubtask()}
}

func (k chanKey) String() string {
	return fmt.Sprintf("job %s attempt %d edge %d subtask %d->%d", k.job, k.attempt, k.edge, k.from, k.to)
}

var _ datapb.ExchangeServer = (*Exchange)(nil)

// Exchange is one worker's data plane: the gRPC Exchange service for
// incoming channels, the registry of input gates, and the client
// connections to other workers.
type Exchange struct {
	datapb.UnimplementedExchangeServer

	logger *slog.Logger
	cfg    config

	mu         sync.Mutex
	closed     bool
	closing    chan struct{}
	chans      map[chanKey]*inputChannel
	latest     map[string]int64 // newest attempt registered per job
	regChanged chan struct{}    // closed and replaced on every registration
	conns      map[string]*grpc.ClientConn
	wg         sync.WaitGroup
}

// New returns an Exchange. Register it on the worker's gRPC server and
// Close it on shutdown.
func New(logger *slog.Logger, opts ...Option) *Exchange {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := config{buffers: DefaultBuffers, regTimeout: DefaultRegistrationTimeout, flushInterval: DefaultFlushInterval}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.buffers < 1 {
		cfg.buffers = DefaultBuffers
	}
	if cfg.regTimeout <= 0 {
		cfg.regTimeout = DefaultRegistrationTimeout
	}
	if cfg.flushInterval <= 0 {
		cfg.flushInterval = DefaultFlushInterval
	}
	return &Exchange{
		logger:     logger,
		cfg:        cfg,
		closing:    make(chan struct{}),
		chans:      map[chanKey]*inputChannel{},
		latest:     map[string]int64{},
		regChanged: make(chan struct{}),
		conns:      map[string]*grpc.ClientConn{},
	}
}

// Register serves the Exchange service on s.
func (x *Exchange) Register(s *grpc.Server) { datapb.RegisterExchangeServer(s, x) }

// FlushInterval is how often senders' partial batches should be flushed.
func (x *Exchange) FlushInterval() time.Duration { return x.cfg.flushInterval }

// Close fails every open input gate and channel, closes the connections to
// other workers and returns when every goroutine the Exchange started has
// exited. It is idempotent. The gRPC server is the caller's to stop.
func (x *Exchange) Close() {
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		x.wg.Wait()
		return
	}
	x.closed = true
	close(x.closing)
	conns := x.conns
	x.conns = nil
	var gates []*InputGate
	for _, c := range x.chans {
		gates = append(gates, c.gate)
	}
	x.mu.Unlock()

	for _, g := range gates {
		g.fail(ErrClosed)
	}
	for addr, cc := range conns {
		if err := cc.Close(); err != nil {
			x.logger.Debug("closing connection", "addr", addr, "err", err)
		}
	}
	x.wg.Wait()
}

// goAttach runs f on a goroutine that Close waits for, unless the Exchange
// is closed.
func (x *Exchange) goAttach(f func()) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return false
	}
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		f()
	}()
	return true
}

// await returns the registered input channel for k, waiting for its
// registration up to the registration timeout.
func (x *Exchange) await(ctx context.Context, k chanKey) (*inputChannel, error) {
	timer := time.NewTimer(x.cfg.regTimeout)
	defer timer.Stop()
	for {
		x.mu.Lock()
		if x.closed {
			x.mu.Unlock()
			return nil, ErrClosed
		}
		if latest, ok := x.latest[k.job]; ok && latest > k.attempt {
			x.mu.Unlock()
			return nil, fmt.Errorf("%w: %s, newest attempt is %d", ErrStaleAttempt, k, latest)
		}
		if c := x.chans[k]; c != nil {
			x.mu.Unlock()
			return c, nil
		}
		changed := x.regChanged
		x.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return nil, fmt.Errorf("%w: %s: no input gate registered it within %s (is the receiving task deployed?)",
				ErrNotRegistered, k, x.cfg.regTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-x.closing:
			return nil, ErrClosed
		}
	}
}

// conn returns the shared client connection to a worker's data address.
func (x *Exchange) conn(addr string) (*grpc.ClientConn, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil, ErrClosed
	}
	if cc := x.conns[addr]; cc != nil {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, x.cfg.tls.DialOption())
	if err != nil {
		return nil, fmt.Errorf("exchange: connect to %s: %w", addr, err)
	}
	x.conns[addr] = cc
	return cc, nil
}

// credits counts frames a sender may send. The receiver adds; the sender
// (local) or the stream handler (remote) takes.
type credits struct {
	mu     sync.Mutex
	n      int
	notify chan struct{} // capacity 1: something was added
}

func newCredits(n int) *credits {
	return &credits{n: n, notify: make(chan struct{}, 1)}
}

func (c *credits) add(k int) {
	c.mu.Lock()
	c.n += k
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// take removes and returns every available credit.
func (c *credits) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = 0
	return n
}

func (c *credits) tryAcquire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n > 0 {
		c.n--
		return true
	}
	return false
}

// blockedReport is how often a sender that waits for credit reports the
// time blocked so far, so a stalled task shows backpressure while it lasts.
const blockedReport = 100 * time.Millisecond

// acquire takes one credit, waiting until one is added, ctx ends or a stop
// channel is closed (then errStop is returned). blocked, when not nil, is
// told the time spent waiting as it passes.
func (c *credits) acquire(ctx context.Context, stop1, stop2 <-chan struct{}, errStop func() error, blocked func(time.Duration)) error {
	if c.tryAcquire() {
		return nil
	}
	last := time.Now()
	report := func() {
		if blocked != nil {
			now := time.Now()
			blocked(now.Sub(last))
			last = now
		}
	}
	defer report()
	tick := time.NewTicker(blockedReport)
	defer tick.Stop()
	for {
		if c.tryAcquire() {
			return nil
		}
		select {
		case <-c.notify:
		case <-tick.C:
			report()
		case <-ctx.Done():
			return ctx.Err()
		case <-stop1:
			return errStop()
		case <-stop2:
			return errStop()
		}
	}
}
