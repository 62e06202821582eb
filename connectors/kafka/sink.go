package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/connectors/format"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/twophase"
)

// Delivery guarantees of the sink (spec: sink.kafka.delivery).
const (
	DeliveryAtLeastOnce = spec.DeliveryAtLeastOnce
	DeliveryExactlyOnce = spec.DeliveryExactlyOnce
)

// recoverTimeout bounds the recovery of an exactly-once sink in Open.
const recoverTimeout = 2 * time.Minute

// closeFlushTimeout bounds how long Close waits for outstanding acks.
const closeFlushTimeout = 30 * time.Second

// Sink writes records to a Kafka topic, at least once or exactly once (see
// the package doc). At least once: Flush returns when every message handed
// to the producer so far is acknowledged by all in-sync replicas
// (acks=all), so flushing on every checkpoint barrier means nothing before
// the barrier is lost. After a failure, records replayed from the last
// checkpoint are written again (duplicates, never losses). Exactly once:
// records go into a Kafka transaction per checkpoint interval, committed
// when the checkpoint completes.
type Sink struct {
	node    string
	cfg     spec.KafkaSink
	sec     *Security
	raw     bool
	keyProg *expr.Program
	onError dataflow.ErrorHandler
	logger  *slog.Logger

	connectBudget time.Duration // injected for tests
	flushTimeout  time.Duration // snapshotFlushTimeout; injected for tests

	client    sarama.Client
	producer  sarama.AsyncProducer
	acks      *ackTracker
	drainDone chan struct{}
	sent      int64 // task goroutine only
	closed    bool
	jsonSize  int // largest value encoded so far, to size the next one
	aborted   atomic.Bool

	// metrics counts waits on the broker as backpressure; link reports
	// whether the brokers answer, probed by watch while connected.
	metrics *dataflow.Counters
	link    *dataflow.Link
	watch   *linkWatch

	eos *txnWriter // exactly-once delivery; nil: at least once
	// tp runs eos's two-phase commit (with eos; nil: at least once).
	tp *twophase.Driver[txnHandle]

	// framed writes the Confluent wire format (registry formats; nil
	// otherwise; registry.go).
	framed *framedSink
}

var (
	_ dataflow.Operator           = (*Sink)(nil)
	_ dataflow.CheckpointListener = (*Sink)(nil)
	_ dataflow.WatermarkHandler   = (*Sink)(nil)
	_ dataflow.SnapshotSummarizer = (*Sink)(nil)
)

// NewSink builds the sink of a spec node with a kafka sink. It checks the
// settings and compiles the key expression; Open connects.
func NewSink(node *spec.Node, ctx *dataflow.Context) (*Sink, error) {
	if node == nil || node.Sink == nil || node.Sink.Kafka == nil {
		return nil, fmt.Errorf("%w: node is not a kafka sink", ErrConfig)
	}
	k := *node.Sink.Kafka
	k.Brokers = slices.Clone(k.Brokers)
	if k.Format == "" {
		k.Format = FormatJSON
	}
	if k.Delivery == "" {
		k.Delivery = DeliveryAtLeastOnce
	}
	var problems []string
	if len(k.Brokers) == 0 {
		problems = append(problems, "brokers is empty")
	}
	if k.Topic == "" {
		problems = append(problems, "topic is empty")
	}
	if !validFormat(k.Format) {
		problems = append(problems, fmt.Sprintf("format %q: want json, raw, avro, protobuf or json_schema", k.Format))
	}
	s := &Sink{node: node.Name, cfg: k, raw: k.Format == FormatRaw, connectBudget: connectTimeout, flushTimeout: snapshotFlushTimeout}
	if f := format.Format(k.Format); f.Valid() {
		if err := s.setFramed(f, k); err != nil {
			problems = append(problems, err.Error())
		}
	}
	switch k.Delivery {
	case DeliveryAtLeastOnce:
	case DeliveryExactlyOnce:
		if k.TransactionTimeout == 0 {
			k.TransactionTimeout = spec.Duration(spec.DefaultTransactionTimeout)
			s.cfg.TransactionTimeout = k.TransactionTimeout
		}
		w, problem := newTxnWriter(node.Name, k, ctx)
		if problem != "" {
			problems = append(problems, problem)
		}
		s.eos = w
		if w != nil {
			s.tp = twophase.New[txnHandle](w, fmt.Sprintf("kafka sink %q", node.Name),
				"is transaction_timeout longer than checkpoint interval + checkpoint timeout + restart time?")
		}
	default:
		problems = append(problems, fmt.Sprintf("delivery %q: want at-least-once or exactly-once", k.Delivery))
	}
	if sec, err := newSecurity(k.TLS, k.SASL); err != nil {
		problems = append(problems, err.Error())
	} else {
		s.sec = sec
	}
	if k.Key != "" {
		prog, err := expr.Compile(k.Key, nil, expr.Any)
		if err != nil {
			problems = append(problems, "key: "+err.Error())
		}
		s.keyProg = prog
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: kafka sink %q: %s", ErrConfig, node.Name, strings.Join(problems, "; "))
	}
	s.setContext(ctx)
	return s, nil
}

func (s *Sink) setContext(ctx *dataflow.Context) {
	if ctx == nil {
		ctx = &dataflow.Context{}
	}
	s.onError = ctx.OnError
	if s.onError == nil {
		s.onError = dataflow.FailOnError{Node: s.node}
	}
	if ctx.Metrics != nil {
		s.metrics = ctx.Metrics
	}
	s.logger = ctx.Logger
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.logger = s.logger.With("node", s.node, "topic", s.cfg.Topic)
}

func (s *Sink) saramaConfig() *sarama.Config {
	c := baseConfig(s.node)
	s.sec.Apply(c)
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	// Idempotence keeps each partition in order and free of duplicates
	// across the producer's own retries; it needs one request in flight.
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	c.Producer.Retry.Backoff = 200 * time.Millisecond
	// Once the sink is aborted nothing waits for its messages: without a
	// backoff, sarama fails the queued ones at once instead of sleeping
	// per message (minutes for a full buffer when the broker is gone).
	retryBackoff, metadataBackoff := c.Producer.Retry.Backoff, c.Metadata.Retry.Backoff
	c.Producer.Retry.BackoffFunc = func(int, int) time.Duration {
		if s.aborted.Load() {
			return 0
		}
		return retryBackoff
	}
	c.Metadata.Retry.BackoffFunc = func(int, int) time.Duration {
		if s.aborted.Load() {
			return 0
		}
		return metadataBackoff
	}
	c.Producer.Timeout = 10 * time.Second
	c.Producer.Flush.Bytes = 512 << 10
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.ChannelBufferSize = 4096
	return c
}

// Open connects to the brokers (retrying briefly) and starts the producer.
// Exactly once, it first recovers: it commits the transactions the restored
// state has pending and aborts every other one open under the subtask's
// transactional ids (see the package doc).
func (s *Sink) Open(ctx *dataflow.Context) error {
	if ctx != nil {
		s.setContext(ctx)
		if s.link == nil {
			s.link = newLink(ctx, s.node, s.cfg.Brokers, s.cfg.Topic)
		}
	}
	if err := s.openEncoder(); err != nil {
		return err
	}
	if s.eos != nil {
		return s.openTxn()
	}
	if s.producer != nil {
		return nil
	}
	client, _, err := connect(context.Background(), s.cfg.Brokers, s.cfg.Topic, s.saramaConfig(), s.connectBudget)
	if err != nil {
		return fmt.Errorf("kafka sink %q: %w", s.node, err)
	}
	p, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return fmt.Errorf("kafka sink %q: topic %q: %w", s.node, s.cfg.Topic, err)
	}
	s.client, s.producer = client, p
	s.acks = newAckTracker()
	s.drainDone = make(chan struct{})
	go s.drainAcks(p)
	s.watch = watchLink(client, s.cfg.Topic, s.link)
	return nil
}

// drainAcks counts acknowledgements and keeps the first failure.
func (s *Sink) drainAcks(p sarama.AsyncProducer) {
	defer close(s.drainDone)
	succ, errs := p.Successes(), p.Errors()
	for succ != nil || errs != nil {
		select {
		case _, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			s.acks.done(nil)
		case e, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			var err error = e
			if e != nil && e.Msg != nil && e.Msg.Partition >= 0 {
				err = fmt.Errorf("partition %d: %w", e.Msg.Partition, e.Err)
			} else if e != nil {
				err = e.Err
			}
			s.acks.done(fmt.Errorf("kafka sink %q: writing to topic %q failed: %w: %w", s.node, s.cfg.Topic, ErrDelivery, err))
		}
	}
}

// Process encodes r and hands it to the producer. A delivery failure of an
// earlier record is returned here (or by Flush) and fails the task.
func (s *Sink) Process(r *dataflow.Record, _ dataflow.Output) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("kafka sink %q: internal error: %v", s.node, p)
		}
	}()
	if s.eos != nil {
		return s.processTxn(r)
	}
	if s.producer == nil {
		return fmt.Errorf("kafka sink %q: Process before Open or after Close", s.node)
	}
	if err := s.acks.err(); err != nil {
		return err
	}
	msg, err := s.message(r)
	if err != nil {
		return s.onError.Handle(r, nil, err)
	}
	select {
	case s.producer.Input() <- msg:
	default:
		// The producer's buffer is full: the broker is slow or gone.
		// Timed only here, so the common case costs nothing.
		b := blockStart(s.metrics)
		s.producer.Input() <- msg
		blockEnd(s.metrics, b)
	}
	s.sent++
	return nil
}

func (s *Sink) message(r *dataflow.Record) (*sarama.ProducerMessage, error) {
	msg := &sarama.ProducerMessage{Topic: s.cfg.Topic}
	if s.raw {
		switch v := r.Fields.Get("value").(type) {
		case string:
			msg.Value = sarama.StringEncoder(v)
		case []byte:
			msg.Value = sarama.ByteEncoder(v)
		default:
			return nil, fmt.Errorf("raw format: field \"value\" must be a string, got %T", v)
		}
	} else if s.framed != nil {
		if s.framed.enc == nil {
			return nil, errors.New("schema registry encoder not open")
		}
		b, err := s.framed.enc.Append(make([]byte, 0, s.jsonSize), r.Fields)
		if err != nil {
			return nil, err
		}
		s.jsonSize = max(s.jsonSize, len(b))
		msg.Value = sarama.ByteEncoder(b)
	} else {
		b, err := s.encodeJSON(r.Fields)
		if err != nil {
			return nil, err
		}
		msg.Value = sarama.ByteEncoder(b)
	}
	if s.keyProg != nil {
		v, err := s.keyProg.Eval(r.Fields)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		if v != nil {
			k, err := keyString(v)
			if err != nil {
				return nil, fmt.Errorf("key: %w", err)
			}
			msg.Key = sarama.StringEncoder(k)
		}
	}
	return msg, nil
}

// encodeJSON encodes fields in their order, without HTML escaping. The
// result is a fresh slice: the producer keeps it until acknowledged.
func (s *Sink) encodeJSON(fields dataflow.Fields) ([]byte, error) {
	b, err := dataflow.AppendJSON(make([]byte, 0, s.jsonSize), fields)
	if err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	s.jsonSize = max(s.jsonSize, len(b))
	return b, nil
}

// keyString is the message key of a key value: strings as they are, numbers
// and booleans in their usual text form, anything else as JSON.
func keyString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Flush waits until every message sent so far is acknowledged, or fails
// with the first delivery error, or ctx ends.
func (s *Sink) Flush(ctx context.Context) error {
	if s.eos != nil {
		if s.client == nil {
			return nil
		}
		return s.eos.flush(ctx)
	}
	if s.producer == nil {
		return nil
	}
	if err := s.acks.wait(ctx, s.sent); err != nil {
		return err
	}
	return nil
}

// snapshotFlushTimeout bounds how long a checkpoint waits for acks.
const snapshotFlushTimeout = 60 * time.Second

// Snapshot implements dataflow.Snapshotter for at-least-once delivery: it
// flushes, so every record before the barrier is acknowledged by Kafka
// before the checkpoint is acknowledged. The sink has no state.
//
// Exactly once, Snapshot is the pre-commit: it sends everything, keeps the
// transaction open, and returns the state with the transaction pending for
// checkpointID.
func (s *Sink) Snapshot(checkpointID int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.flushTimeout)
	defer cancel()
	b := blockStart(s.metrics)
	defer blockEnd(s.metrics, b)
	if s.eos != nil {
		if s.client == nil {
			return nil, fmt.Errorf("kafka sink %q: checkpoint %d before Open", s.node, checkpointID)
		}
		return s.tp.PreCommit(ctx, checkpointID)
	}
	if err := s.Flush(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("kafka sink %q: topic %q: checkpoint %d: %d messages not acknowledged within %s",
				s.node, s.cfg.Topic, checkpointID, s.sent-s.acks.count(), s.flushTimeout)
		}
		return nil, err
	}
	return nil, nil
}

// Restore implements dataflow.Snapshotter. Exactly once, it keeps the
// restored states for Open, which recovers from them. At least once there
// is nothing to restore, but a state with pre-committed transactions (an
// exactly-once sink's savepoint) is refused: ignoring it would lose them.
func (s *Sink) Restore(states [][]byte) error {
	var decoded []sinkState
	for i, b := range states {
		if len(b) == 0 {
			continue // an at-least-once sink's (empty) state
		}
		st, err := decodeSinkState(b)
		if err != nil {
			return fmt.Errorf("kafka sink %q: restored state %d: %w", s.node, i, err)
		}
		decoded = append(decoded, st)
	}
	if s.eos == nil {
		for _, st := range decoded {
			if len(st.Pending) > 0 {
				return fmt.Errorf("%w: kafka sink %q: the restored state has %d pre-committed transactions of an exactly-once sink (first: %s); restore with delivery exactly-once so that they are committed",
					ErrConfig, s.node, len(st.Pending), st.Pending[0])
			}
		}
		return nil
	}
	s.tp.Restore(states)
	return nil
}

// NotifyCheckpointComplete implements dataflow.CheckpointListener: exactly
// once, it commits the pending transactions of checkpointID and earlier.
// An error names the transaction and fails the task; a restore commits it.
func (s *Sink) NotifyCheckpointComplete(ctx context.Context, checkpointID int64) error {
	if s.eos == nil || s.client == nil {
		return nil
	}
	return s.tp.CommitUpTo(ctx, checkpointID)
}

// ProcessWatermark implements dataflow.WatermarkHandler: the final
// watermark of a bounded input tells an exactly-once sink that Close
// commits what no checkpoint will cover.
func (s *Sink) ProcessWatermark(wm int64, out dataflow.Output) error {
	if wm == dataflow.MaxWatermark && s.tp != nil {
		s.tp.EndOfInput = true
	}
	return out.EmitWatermark(wm)
}

// SnapshotSummary implements dataflow.SnapshotSummarizer: the pending
// transactions of an exactly-once sink.
func (s *Sink) SnapshotSummary() dataflow.SnapshotSummary {
	if s.eos == nil {
		return dataflow.SnapshotSummary{}
	}
	return dataflow.SnapshotSummary{PendingTransactions: pendingSummary(s.tp.Pending())}
}

var _ dataflow.Snapshotter = (*Sink)(nil)

// Close flushes (bounded by a timeout), then stops the producer and
// releases its connections. It is idempotent.
func (s *Sink) Close(dataflow.Output) error {
	if s.eos != nil {
		return s.closeTxn()
	}
	if s.closed || s.producer == nil {
		s.closed = true
		return nil
	}
	s.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	defer cancel()
	err := s.Flush(ctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("kafka sink %q: topic %q: %d messages not acknowledged within %s", s.node, s.cfg.Topic, s.sent-s.acks.count(), closeFlushTimeout)
	}
	s.watch.stop()
	s.producer.AsyncClose()
	<-s.drainDone
	s.client.Close()
	s.producer = nil
	return err
}

// Abort implements dataflow.Aborter: the subtask failed or was cancelled,
// so nothing is flushed or committed (what was not committed is replayed
// from the last checkpoint). The producer is told to close and its
// connections are released in the background, bounded by the client's
// network timeouts, so a broker that does not answer cannot hold up the
// cancellation. An exactly-once sink aborts its open transaction in the
// background (read_committed readers would otherwise wait for it until
// its transaction timeout; a restore fences it anyway); pre-committed
// transactions stay pending for the restore to commit.
func (s *Sink) Abort() {
	if s.closed {
		return
	}
	s.closed = true
	s.aborted.Store(true)
	watch := s.watch
	if s.eos != nil {
		c, w := s.client, s.eos
		s.client = nil
		go func() {
			watch.stop()
			ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
			defer cancel()
			w.abortOpen(ctx)
			if c != nil {
				c.Close()
			}
		}()
		return
	}
	if s.producer == nil {
		return
	}
	p, drained, c := s.producer, s.drainDone, s.client
	s.producer = nil
	p.AsyncClose()
	go func() {
		watch.stop()
		<-drained
		c.Close()
	}()
}

// ackTracker counts finished sends (acked or failed) for Flush.
type ackTracker struct {
	mu       sync.Mutex
	finished int64
	first    error
	waiting  bool
	changed  chan struct{}
}

func newAckTracker() *ackTracker { return &ackTracker{changed: make(chan struct{})} }

func (a *ackTracker) done(err error) {
	a.mu.Lock()
	a.finished++
	if err != nil && a.first == nil {
		a.first = err
	}
	if a.waiting {
		close(a.changed)
		a.changed = make(chan struct{})
		a.waiting = false
	}
	a.mu.Unlock()
}

func (a *ackTracker) err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.first
}

func (a *ackTracker) count() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.finished
}

func (a *ackTracker) wait(ctx context.Context, target int64) error {
	for {
		a.mu.Lock()
		if a.first != nil {
			a.mu.Unlock()
			return a.first
		}
		if a.finished >= target {
			a.mu.Unlock()
			return nil
		}
		a.waiting = true
		ch := a.changed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
