package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// txnHandle names one Kafka transaction: the transactional id and the
// producer id and epoch InitProducerID gave it. It is what the exactly-once
// sink puts in its snapshot for a pre-committed transaction.
type txnHandle struct {
	ID         string `json:"id"`
	ProducerID int64  `json:"producer_id"`
	Epoch      int16  `json:"epoch"`
}

func (h txnHandle) String() string {
	return fmt.Sprintf("transaction %q (producer id %d, epoch %d)", h.ID, h.ProducerID, h.Epoch)
}

// txnConn drives Kafka transactions with sarama's public protocol types over
// *sarama.Broker: FindCoordinator (through the client's coordinator cache),
// InitProducerID, AddPartitionsToTxn, Produce with transactional record
// batches, and EndTxn. sarama's transactional producer does not expose its
// producer id and epoch, which a commit after a restart needs; this does.
type txnConn struct {
	client  sarama.Client
	version sarama.KafkaVersion
	timeout time.Duration // the transaction timeout sent with InitProducerID
	// attempts bounds retries of a retriable answer (coordinator moving,
	// concurrent transactions, a broken connection).
	attempts int
	backoff  time.Duration
	// coords caches the coordinator (broker id) of the transactional ids
	// in use, until their transaction ends. (sarama's client keeps every
	// id it ever looked up, which grows by one per transaction here.)
	coords map[string]int32
}

const (
	txnAttempts = 20
	txnBackoff  = 100 * time.Millisecond
)

func newTxnConn(client sarama.Client, timeout time.Duration) *txnConn {
	return &txnConn{client: client, version: client.Config().Version, timeout: timeout, attempts: txnAttempts, backoff: txnBackoff,
		coords: map[string]int32{}}
}

// Request versions allowed by the configured protocol version, chosen as
// sarama's own transaction manager chooses them.

func endTxnVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V2_8_0_0):
		return 3
	case v.IsAtLeast(sarama.V2_7_0_0):
		return 2
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 1
	}
	return 0
}

// addPartitionsVersion follows the same steps as EndTxn.
func addPartitionsVersion(v sarama.KafkaVersion) int16 { return endTxnVersion(v) }

func initProducerIDVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V2_7_0_0):
		return 4
	case v.IsAtLeast(sarama.V2_5_0_0):
		return 3
	case v.IsAtLeast(sarama.V2_4_0_0):
		return 2
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 1
	}
	return 0
}

func produceVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V3_7_0_0):
		return 10
	case v.IsAtLeast(sarama.V2_8_0_0):
		return 9
	case v.IsAtLeast(sarama.V2_4_0_0):
		return 8
	case v.IsAtLeast(sarama.V2_1_0_0):
		return 7
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 6
	case v.IsAtLeast(sarama.V1_0_0_0):
		return 5
	}
	return 3
}

// retry runs step until it reports done, a fatal error, the attempts run
// out, or ctx ends. step returns (retry, err): retry with a nil error is not
// allowed to end the loop.
func (c *txnConn) retry(ctx context.Context, step func() (retry bool, err error)) error {
	var last error
	for attempt := 0; attempt < c.attempts; attempt++ {
		again, err := step()
		if !again {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last answer: %v)", ctx.Err(), last)
		case <-time.After(min(c.backoff<<min(attempt, 4), 2*time.Second)):
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", c.attempts, last)
}

func findCoordinatorVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V2_4_0_0):
		return 3
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 2
	}
	return 1
}

// coordinator returns the transaction coordinator of id (FindCoordinator
// on any broker, then the client's connection to that broker).
func (c *txnConn) coordinator(id string) (*sarama.Broker, error) {
	if bid, ok := c.coords[id]; ok {
		if b, err := c.client.Broker(bid); err == nil {
			return b, nil
		}
		delete(c.coords, id)
	}
	any := c.client.LeastLoadedBroker()
	if any == nil {
		return nil, sarama.ErrOutOfBrokers
	}
	resp, err := any.FindCoordinator(&sarama.FindCoordinatorRequest{
		Version:         findCoordinatorVersion(c.version),
		CoordinatorKey:  id,
		CoordinatorType: sarama.CoordinatorTransaction,
	})
	if err != nil {
		_ = any.Close()
		return nil, fmt.Errorf("find coordinator of %q: %w", id, err)
	}
	if resp.Err != sarama.ErrNoError {
		return nil, fmt.Errorf("find coordinator of %q: %w", id, resp.Err)
	}
	if resp.Coordinator == nil {
		return nil, fmt.Errorf("find coordinator of %q: no coordinator in the answer", id)
	}
	b, err := c.client.Broker(resp.Coordinator.ID())
	if err != nil {
		// A broker the metadata does not know yet.
		_ = c.client.RefreshMetadata()
		return nil, fmt.Errorf("find coordinator of %q: broker %d: %w", id, resp.Coordinator.ID(), err)
	}
	c.coords[id] = resp.Coordinator.ID()
	return b, nil
}

// forget drops a coordinator that failed, so the next attempt looks it up.
func (c *txnConn) forget(b *sarama.Broker, id string) {
	if b != nil {
		_ = b.Close()
	}
	delete(c.coords, id)
}

// release forgets the coordinator of an id whose transaction ended.
func (c *txnConn) release(id string) { delete(c.coords, id) }

// initProducerID registers transactional id with the coordinator and
// returns its producer id and epoch. For an id in use, the broker bumps the
// epoch, which fences any older producer with that id and aborts its open
// transaction; a never-used id gets epoch 0.
func (c *txnConn) initProducerID(ctx context.Context, id string) (txnHandle, error) {
	var h txnHandle
	tid := id
	err := c.retry(ctx, func() (bool, error) {
		b, err := c.coordinator(id)
		if err != nil {
			return true, err
		}
		req := &sarama.InitProducerIDRequest{
			Version:            initProducerIDVersion(c.version),
			TransactionalID:    &tid,
			TransactionTimeout: c.timeout,
			ProducerID:         -1,
			ProducerEpoch:      -1,
		}
		resp, err := b.InitProducerID(req)
		if err != nil {
			c.forget(b, id)
			return true, err
		}
		switch v := classifyTxnAnswer(resp.Err); v {
		case answerOK:
			h = txnHandle{ID: id, ProducerID: resp.ProducerID, Epoch: resp.ProducerEpoch}
			return false, nil
		case answerRefresh:
			c.forget(nil, id)
			return true, resp.Err
		case answerRetry:
			return true, resp.Err
		default:
			if errors.Is(resp.Err, sarama.ErrInvalidTransactionTimeout) {
				return false, fmt.Errorf("init transactional id %q: the broker refuses transaction timeout %s (above its transaction.max.timeout.ms?): %w", id, c.timeout, resp.Err)
			}
			return false, fmt.Errorf("init transactional id %q: %w", id, resp.Err)
		}
	})
	return h, err
}

// addPartitions adds partitions of topic to h's transaction; it must come
// before the first produce to a partition in the transaction.
func (c *txnConn) addPartitions(ctx context.Context, h txnHandle, topic string, parts []int32) error {
	return c.retry(ctx, func() (bool, error) {
		b, err := c.coordinator(h.ID)
		if err != nil {
			return true, err
		}
		req := &sarama.AddPartitionsToTxnRequest{
			Version:         addPartitionsVersion(c.version),
			TransactionalID: h.ID,
			ProducerID:      h.ProducerID,
			ProducerEpoch:   h.Epoch,
			TopicPartitions: map[string][]int32{topic: parts},
		}
		resp, err := b.AddPartitionsToTxn(req)
		if err != nil {
			c.forget(b, h.ID)
			return true, err
		}
		var worst error
		verdict := answerOK
		for _, rs := range resp.Errors {
			for _, pe := range rs {
				if pe == nil {
					continue
				}
				v := classifyTxnAnswer(pe.Err)
				if v > verdict {
					verdict, worst = v, fmt.Errorf("partition %d: %w", pe.Partition, pe.Err)
				}
			}
		}
		switch verdict {
		case answerOK:
			return false, nil
		case answerRefresh:
			c.forget(nil, h.ID)
			return true, worst
		case answerRetry:
			return true, worst
		}
		return false, fmt.Errorf("add partitions of topic %q to %s: %w", topic, h, worst)
	})
}

// produce writes one transactional record batch per partition of topic and
// waits for acks=all. Retries resend the same batches with the same
// sequence numbers, so the broker drops what it already has.
func (c *txnConn) produce(ctx context.Context, h txnHandle, topic string, batches map[int32]*sarama.RecordBatch, ackTimeout time.Duration) error {
	pending := make(map[int32]*sarama.RecordBatch, len(batches))
	for p, b := range batches {
		pending[p] = b
	}
	return c.retry(ctx, func() (bool, error) {
		byLeader := map[*sarama.Broker][]int32{}
		for p := range pending {
			b, err := c.client.Leader(topic, p)
			if err != nil {
				_ = c.client.RefreshMetadata(topic)
				return true, fmt.Errorf("partition %d: leader: %w", p, err)
			}
			byLeader[b] = append(byLeader[b], p)
		}
		var retryErr error
		for b, parts := range byLeader {
			id := h.ID
			req := &sarama.ProduceRequest{
				Version:         produceVersion(c.version),
				TransactionalID: &id,
				RequiredAcks:    sarama.WaitForAll,
				Timeout:         int32(ackTimeout / time.Millisecond),
			}
			for _, p := range parts {
				req.AddBatch(topic, p, pending[p])
			}
			resp, err := b.Produce(req)
			if err != nil {
				_ = b.Close()
				_ = c.client.RefreshMetadata(topic)
				retryErr = err
				continue
			}
			for _, p := range parts {
				blk := resp.GetBlock(topic, p)
				if blk == nil {
					retryErr = fmt.Errorf("partition %d: no answer", p)
					continue
				}
				switch {
				case blk.Err == sarama.ErrNoError, errors.Is(blk.Err, sarama.ErrDuplicateSequenceNumber):
					delete(pending, p)
				case retriableProduce(blk.Err):
					_ = c.client.RefreshMetadata(topic)
					retryErr = fmt.Errorf("partition %d: %w", p, blk.Err)
				default:
					return false, fmt.Errorf("%w: topic %q partition %d, %s: %w", ErrDelivery, topic, p, h, blk.Err)
				}
			}
		}
		if len(pending) == 0 {
			return false, nil
		}
		return true, retryErr
	})
}

func retriableProduce(err error) bool {
	switch {
	case errors.Is(err, sarama.ErrNotLeaderForPartition), errors.Is(err, sarama.ErrLeaderNotAvailable),
		errors.Is(err, sarama.ErrRequestTimedOut), errors.Is(err, sarama.ErrNotEnoughReplicas),
		errors.Is(err, sarama.ErrNotEnoughReplicasAfterAppend), errors.Is(err, sarama.ErrUnknownTopicOrPartition),
		errors.Is(err, sarama.ErrKafkaStorageError), errors.Is(err, sarama.ErrConcurrentTransactions):
		return true
	}
	return false
}

// endTxn commits (or aborts) h's transaction. A repeated commit of a
// committed transaction succeeds, so a retry after a lost answer is safe.
// The error names the transaction; it wraps ErrTxnFenced when the broker no
// longer knows h's epoch (the transaction was aborted by its timeout or
// another producer took the id over), and ErrTxnUnknownOutcome when no
// answer came back.
func (c *txnConn) endTxn(ctx context.Context, h txnHandle, commit bool) error {
	what := "commit"
	if !commit {
		what = "abort"
	}
	// definitive: the coordinator gave a final answer (success or a fatal
	// error). Anything else that ends the retries leaves the outcome open:
	// an earlier attempt may have reached the coordinator.
	var definitive bool
	err := c.retry(ctx, func() (bool, error) {
		b, err := c.coordinator(h.ID)
		if err != nil {
			return true, err
		}
		req := &sarama.EndTxnRequest{
			Version:           endTxnVersion(c.version),
			TransactionalID:   h.ID,
			ProducerID:        h.ProducerID,
			ProducerEpoch:     h.Epoch,
			TransactionResult: commit,
		}
		resp, err := b.EndTxn(req)
		if err != nil {
			c.forget(b, h.ID)
			return true, err
		}
		switch classifyTxnAnswer(resp.Err) {
		case answerOK:
			return false, nil
		case answerRefresh:
			c.forget(nil, h.ID)
			return true, resp.Err
		case answerRetry:
			return true, resp.Err
		}
		definitive = true
		return false, resp.Err
	})
	c.release(h.ID)
	switch {
	case err == nil:
		return nil
	case isFenced(err):
		return fmt.Errorf("%w: %s %s: the broker no longer has this transaction open under its epoch (aborted after transaction_timeout, or the id was taken over): %w", ErrTxnFenced, what, h, err)
	case !definitive:
		return fmt.Errorf("%w: %s %s: no final answer from the transaction coordinator: %w", ErrTxnUnknownOutcome, what, h, err)
	}
	return fmt.Errorf("%s %s: %w", what, h, err)
}

func isFenced(err error) bool {
	return errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) ||
		errors.Is(err, sarama.ErrInvalidProducerIDMapping) || errors.Is(err, sarama.ErrTransactionCoordinatorFenced)
}

// txnAnswer is what to do about a transaction coordinator's error code.
type txnAnswer int

const (
	answerOK      txnAnswer = iota
	answerRetry             // try again as is
	answerRefresh           // find the coordinator again, then retry
	answerFatal             // give up
)

// classifyTxnAnswer maps a coordinator's error code to what to do.
func classifyTxnAnswer(err error) txnAnswer {
	switch {
	case err == nil, errors.Is(err, sarama.ErrNoError):
		return answerOK
	case errors.Is(err, sarama.ErrNotCoordinatorForConsumer), errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable):
		return answerRefresh
	case errors.Is(err, sarama.ErrOffsetsLoadInProgress), errors.Is(err, sarama.ErrConcurrentTransactions),
		errors.Is(err, sarama.ErrRequestTimedOut):
		return answerRetry
	}
	var kerr sarama.KError
	if !errors.As(err, &kerr) {
		// Not an answer from the broker: a connection error.
		return answerRetry
	}
	return answerFatal
}
