package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/failpoint"
	"github.com/weir-stream/weir/internal/twophase"
)

// txnBatchBytes is how much a transaction buffers before it sends what it
// has (it always sends everything on a barrier). It keeps each partition's
// batch below Kafka's default max.message.bytes (1 MiB).
const txnBatchBytes = 512 << 10

// txnRecordOverhead is what a record adds to a batch besides key and value,
// at most.
const txnRecordOverhead = 32

// txnWriter is the exactly-once half of the sink: it writes records in a
// Kafka transaction per checkpoint interval and keeps the transactions it
// pre-committed until their checkpoint completes. It runs on the task
// goroutine only.
type txnWriter struct {
	conn        *txnConn
	node, topic string
	self        sinkIdentity
	partitions  int32
	partitioner sarama.Partitioner
	ackTimeout  time.Duration
	logger      *slog.Logger

	nextSeq   int64
	cur       *openTxn     // nil: none begun since the last barrier
	plan      recoveryPlan // between PlanRecovery and AbortLingering
	committed int64        // transactions committed, for tests and logs
	// metrics counts the waits on the broker as backpressure (nil: not).
	metrics *dataflow.Counters
}

// openTxn is the transaction records are written to now.
type openTxn struct {
	h       txnHandle
	added   map[int32]bool  // partitions added to the transaction
	seq     map[int32]int32 // next sequence number per partition
	buf     map[int32]*sarama.RecordBatch
	bytes   int
	records int64
}

// begin starts the next transaction: a fresh transactional id of this
// subtask, registered with InitProducerID.
func (w *txnWriter) begin(ctx context.Context) error {
	id := txnID(w.self.Base, w.nextSeq)
	h, err := w.conn.initProducerID(ctx, id)
	if err != nil {
		return fmt.Errorf("kafka sink %q: begin transaction: %w", w.node, err)
	}
	w.nextSeq++
	w.cur = &openTxn{h: h, added: map[int32]bool{}, seq: map[int32]int32{}, buf: map[int32]*sarama.RecordBatch{}}
	return nil
}

// write adds one record to the open transaction, beginning it if needed,
// and sends the buffered batches when they are large. Each of those steps
// is bounded by timeout.
func (w *txnWriter) write(key, value []byte, timeout time.Duration) error {
	if w.cur == nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		b := blockStart(w.metrics)
		err := w.begin(ctx)
		blockEnd(w.metrics, b)
		cancel()
		if err != nil {
			return err
		}
	}
	var k sarama.Encoder
	if key != nil {
		k = sarama.ByteEncoder(key)
	}
	p, err := w.partitioner.Partition(&sarama.ProducerMessage{Topic: w.topic, Key: k}, w.partitions)
	if err != nil {
		return fmt.Errorf("kafka sink %q: partition: %w", w.node, err)
	}
	t := w.cur
	now := time.Now().Truncate(time.Millisecond)
	b := t.buf[p]
	if b == nil {
		b = &sarama.RecordBatch{
			Version:         2,
			IsTransactional: true,
			ProducerID:      t.h.ProducerID,
			ProducerEpoch:   t.h.Epoch,
			FirstSequence:   t.seq[p],
			FirstTimestamp:  now,
			MaxTimestamp:    now,
		}
		t.buf[p] = b
	}
	b.Records = append(b.Records, &sarama.Record{
		OffsetDelta:    int64(len(b.Records)),
		TimestampDelta: now.Sub(b.FirstTimestamp),
		Key:            key,
		Value:          value,
	})
	b.LastOffsetDelta = int32(len(b.Records) - 1)
	b.MaxTimestamp = now
	t.bytes += len(key) + len(value) + txnRecordOverhead
	t.records++
	if t.bytes >= txnBatchBytes {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		b := blockStart(w.metrics)
		defer blockEnd(w.metrics, b)
		return w.flush(ctx)
	}
	return nil
}

// flush sends every buffered batch of the open transaction and waits for
// the acks. The records stay invisible to read_committed readers until the
// transaction commits.
func (w *txnWriter) flush(ctx context.Context) error {
	t := w.cur
	if t == nil || len(t.buf) == 0 {
		return nil
	}
	var add []int32
	for p := range t.buf {
		if !t.added[p] {
			add = append(add, p)
		}
	}
	if len(add) > 0 {
		if err := w.conn.addPartitions(ctx, t.h, w.topic, add); err != nil {
			return fmt.Errorf("kafka sink %q: %w", w.node, err)
		}
		for _, p := range add {
			t.added[p] = true
		}
	}
	if err := w.conn.produce(ctx, t.h, w.topic, t.buf, w.ackTimeout); err != nil {
		return fmt.Errorf("kafka sink %q: writing to topic %q in %s: %w", w.node, w.topic, t.h, err)
	}
	for p, b := range t.buf {
		t.seq[p] += int32(len(b.Records))
	}
	t.buf = map[int32]*sarama.RecordBatch{}
	t.bytes = 0
	return nil
}

// The txnWriter is the twophase.Participant of the exactly-once sink: the
// driver (twophase.Driver, shared with the SDK's transactional sinks) keeps
// the pending transactions and calls these in the protocol's order.
var _ twophase.Participant[txnHandle] = (*txnWriter)(nil)

// PreCommit is the sink's part of checkpoint n: send everything, keep the
// transaction open and hand it to the driver as pending for n. The next
// record begins a new transaction. An interval without records has no
// transaction: nothing to commit.
func (w *txnWriter) PreCommit(ctx context.Context, n int64) (txnHandle, bool, error) {
	if err := w.flush(ctx); err != nil {
		return txnHandle{}, false, err
	}
	cur := w.cur
	w.cur = nil
	if cur == nil || cur.records == 0 {
		return txnHandle{}, false, nil
	}
	return cur.h, true, nil
}

// EncodeState is the subtask's snapshot: where its ids continue and the
// pending transactions (the format of earlier releases, sinkState v1). It
// is the last step of the pre-commit, so the failpoint "after pre-commit"
// is here.
func (w *txnWriter) EncodeState(pending []twophase.Pending[txnHandle]) ([]byte, error) {
	st := sinkState{
		Job:     w.self.Job,
		Base:    w.self.Base,
		Subtask: w.self.Subtask,
		NextSeq: w.nextSeq,
	}
	for _, p := range pending {
		st.Pending = append(st.Pending, pendingTxn{txnHandle: p.Committable, Checkpoint: p.Checkpoint})
	}
	data, err := encodeSinkState(st)
	if err != nil {
		return nil, err
	}
	if err := failpoint.Inject(failpoint.KafkaSinkAfterPreCommit); err != nil {
		return nil, err
	}
	return data, nil
}

// Commit commits one pending transaction (EndTxn with its stored producer
// id and epoch; a repeated commit succeeds).
func (w *txnWriter) Commit(ctx context.Context, p twophase.Pending[txnHandle]) error {
	if err := failpoint.Inject(failpoint.KafkaSinkCommit); err != nil {
		return err
	}
	if err := w.conn.endTxn(ctx, p.Committable, true); err != nil {
		return err
	}
	w.committed++
	return nil
}

// PlanRecovery decides, with planRecovery, what the restored states ask:
// the pending transactions to commit (returned to the driver, which
// commits them first) and the id ranges AbortLingering fences.
func (w *txnWriter) PlanRecovery(raw [][]byte) ([]twophase.Pending[txnHandle], error) {
	var states []sinkState
	for i, b := range raw {
		if len(b) == 0 {
			continue
		}
		st, err := decodeSinkState(b)
		if err != nil {
			return nil, fmt.Errorf("restored state %d: %w", i, err)
		}
		states = append(states, st)
	}
	plan, err := planRecovery(w.self, states)
	if err != nil {
		return nil, err
	}
	w.plan = plan
	out := make([]twophase.Pending[txnHandle], len(plan.Commit))
	for i, p := range plan.Commit {
		out[i] = twophase.Pending[txnHandle]{Checkpoint: p.Checkpoint, Committable: p.txnHandle}
	}
	return out, nil
}

// AbortLingering aborts every transaction open under this job's ids that
// the restored states do not list (written after the checkpoint) and
// continues at the plan's sequence number.
func (w *txnWriter) AbortLingering(ctx context.Context) error {
	aborted := 0
	for _, s := range w.plan.Scans {
		n, err := w.abortFrom(ctx, s)
		if err != nil {
			return fmt.Errorf("abort transactions under %q from %d: %w", s.Base, s.From, err)
		}
		aborted += n
	}
	w.nextSeq = w.plan.NextSeq
	if len(w.plan.Commit) > 0 || aborted > 0 {
		w.logger.Info("exactly-once sink recovered", "committed", len(w.plan.Commit), "fenced", aborted, "next_transaction", txnID(w.self.Base, w.nextSeq))
	}
	w.plan = recoveryPlan{}
	return nil
}

// abortFrom fences ids s.Base-s.From, ... with InitProducerID (which aborts
// a transaction open under the id) until the broker answers epoch 0 for an
// id it has never seen. It returns how many ids were in use.
func (w *txnWriter) abortFrom(ctx context.Context, s idScan) (int, error) {
	for i := int64(0); i < maxScan; i++ {
		id := txnID(s.Base, s.From+i)
		h, err := w.conn.initProducerID(ctx, id)
		w.conn.release(id)
		if err != nil {
			return int(i), err
		}
		if probeDone(h.Epoch) {
			return int(i), nil
		}
	}
	return maxScan, fmt.Errorf("more than %d transactional ids in use", maxScan)
}

// abortOpen aborts the transaction records are being written to (not the
// pending ones: a restore commits those). Best effort, on cancellation.
func (w *txnWriter) abortOpen(ctx context.Context) {
	if w.cur == nil {
		return
	}
	h, sent := w.cur.h, len(w.cur.added) > 0
	w.cur = nil
	if !sent {
		w.conn.release(h.ID)
		return // nothing reached the broker: no transaction to abort
	}
	if err := w.conn.endTxn(ctx, h, false); err != nil && !errors.Is(err, context.Canceled) {
		w.logger.Warn("aborting the open transaction on close", "transaction", h.ID, "err", err)
	}
}

// pendingSummary describes the pending transactions for checkpoint
// inspection.
func pendingSummary(pending []twophase.Pending[txnHandle]) []dataflow.PendingTransaction {
	out := make([]dataflow.PendingTransaction, len(pending))
	for i, p := range pending {
		h := p.Committable
		out[i] = dataflow.PendingTransaction{TransactionalID: h.ID, ProducerID: h.ProducerID, Epoch: h.Epoch, CheckpointID: p.Checkpoint}
	}
	return out
}

// newTxnWriter checks what exactly-once delivery needs from the context
// and returns the writer (not connected yet), or a problem.
func newTxnWriter(node string, k spec.KafkaSink, ctx *dataflow.Context) (*txnWriter, string) {
	if ctx == nil || ctx.JobID == "" {
		return nil, "delivery exactly-once: the job id is unknown (transactional ids are derived from it)"
	}
	par := max(ctx.Parallelism, 1)
	if ctx.Subtask < 0 || ctx.Subtask >= par {
		return nil, fmt.Sprintf("delivery exactly-once: subtask %d of %d", ctx.Subtask, par)
	}
	if t := k.TransactionTimeout.D(); t < spec.MinTransactionTimeout || t > spec.MaxTransactionTimeout {
		return nil, fmt.Sprintf("transaction_timeout %s: must be between %s and %s", t, spec.MinTransactionTimeout, spec.MaxTransactionTimeout)
	}
	return &txnWriter{
		node:  node,
		topic: k.Topic,
		self: sinkIdentity{
			Job:         ctx.JobID,
			Base:        txnBase(ctx.JobID, node, ctx.Subtask),
			Subtask:     ctx.Subtask,
			Parallelism: par,
		},
		ackTimeout: 10 * time.Second,
	}, ""
}

// openTxn connects and recovers an exactly-once sink.
func (s *Sink) openTxn() error {
	if s.client != nil {
		return nil
	}
	client, parts, err := connect(context.Background(), s.cfg.Brokers, s.cfg.Topic, s.txnConfig(), s.connectBudget)
	if err != nil {
		return fmt.Errorf("kafka sink %q: %w", s.node, err)
	}
	w := s.eos
	w.logger = s.logger
	w.metrics = s.metrics
	s.tp.Logger = s.logger
	s.tp.Blocked = func() func() {
		b := blockStart(s.metrics)
		return func() { blockEnd(s.metrics, b) }
	}
	w.conn = newTxnConn(client, s.cfg.TransactionTimeout.D())
	w.partitions = int32(len(parts))
	w.partitioner = sarama.NewHashPartitioner(s.cfg.Topic)
	ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
	defer cancel()
	if err := s.tp.Recover(ctx); err != nil {
		client.Close()
		w.conn = nil
		return err
	}
	s.client = client
	s.watch = watchLink(client, s.cfg.Topic, s.link)
	return nil
}

func (s *Sink) txnConfig() *sarama.Config {
	c := baseConfig(s.node)
	s.sec.Apply(c)
	c.Producer.Timeout = 10 * time.Second
	return c
}

func (s *Sink) processTxn(r *dataflow.Record) error {
	if s.client == nil {
		return fmt.Errorf("kafka sink %q: Process before Open or after Close", s.node)
	}
	msg, err := s.message(r)
	if err != nil {
		return s.onError.Handle(r, nil, err)
	}
	var key, value []byte
	if msg.Key != nil {
		if key, err = msg.Key.Encode(); err != nil {
			return s.onError.Handle(r, nil, fmt.Errorf("key: %w", err))
		}
	}
	if value, err = msg.Value.Encode(); err != nil {
		return s.onError.Handle(r, nil, err)
	}
	return s.eos.write(key, value, snapshotFlushTimeout)
}

// closeTxn ends an exactly-once sink: after the end of a bounded input it
// commits everything; otherwise (cancellation, failure, stop with
// savepoint) it aborts the open transaction and leaves the pending ones to
// the next checkpoint's notification or a restore.
func (s *Sink) closeTxn() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.client == nil {
		return nil
	}
	defer func() {
		s.watch.stop()
		s.client.Close()
		s.client = nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	defer cancel()
	if s.tp.EndOfInput {
		return s.tp.Finish(ctx)
	}
	s.eos.abortOpen(ctx)
	return nil
}
