package kafka

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-stream/weir/connectors/kafka/devbroker"
	"github.com/weir-stream/weir/dataflow"
)

// shortRetries makes the sink's own EndTxn retries give up fast, so an
// unreachable broker turns into an unknown outcome within a test.
func shortRetries(s *Sink) {
	s.eos.conn.attempts = 2
	s.eos.conn.backoff = 10 * time.Millisecond
}

// notifyAsync runs NotifyCheckpointComplete(n) on its own goroutine.
func notifyAsync(s *Sink, n int64) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.NotifyCheckpointComplete(context.Background(), n) }()
	return done
}

// TestExactlyOnceSinkRecommitsUnknownOutcome: while the broker drops every
// EndTxn without an answer (unreachable during the commit), the commit's
// outcome is unknown and the sink commits again with backoff, counting the
// wait as backpressure, instead of failing the task; once the broker
// answers, the commit succeeds and the output is exact. Before, the first
// unknown outcome failed the task (and restarted the job). With a deadline
// on the wait, the error still wraps ErrTxnUnknownOutcome and names the
// transaction: never silent success.
func TestExactlyOnceSinkRecommitsUnknownOutcome(t *testing.T) {
	c, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job12", 0, 1)
	dctx.Metrics = &dataflow.Counters{}
	s := mustEOSSink(t, node, dctx)
	shortRetries(s)
	writeRange(t, s, 0, 10)
	if _, err := s.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	var dropping atomic.Bool
	var dropped atomic.Int64
	dropping.Store(true)
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if dropping.Load() {
			dropped.Add(1)
			return nil, errors.New("dropped"), true // the connection closes without an answer
		}
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.NotifyCheckpointComplete(ctx, 1)
	if !errors.Is(err, ErrTxnUnknownOutcome) || !strings.Contains(err.Error(), `"weir-job12-out-0-0"`) {
		t.Fatalf("NotifyCheckpointComplete with a deadline: %v\nwant ErrTxnUnknownOutcome naming weir-job12-out-0-0", err)
	}

	bp := dctx.Metrics.Backpressured()
	from := dropped.Load()
	done := notifyAsync(s, 1)
	eventually(t, 30*time.Second, "three rounds of EndTxn dropped, counted as backpressure", func() bool {
		return dropped.Load() >= from+6 && dctx.Metrics.Backpressured() > bp
	})
	select {
	case err := <-done:
		t.Fatalf("the commit ended while the broker gave no answer: %v", err)
	default:
	}
	dropping.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the commit did not succeed once the broker answered")
	}
	if s.tp.Recommits() < 2 || len(s.tp.Pending()) != 0 {
		t.Fatalf("recommits %d, pending %v", s.tp.Recommits(), s.tp.Pending())
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 10))
}

// TestExactlyOnceSinkRecommitsLostAnswer: the broker commits the
// transaction but its answer is lost (the connection breaks after the
// commit). The sink commits again; the broker answers success for a
// repeated commit of a committed transaction, and every record is there
// once.
func TestExactlyOnceSinkRecommitsLostAnswer(t *testing.T) {
	c, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job13", 0, 1)
	s := mustEOSSink(t, node, dctx)
	s.eos.conn.attempts = 1 // the driver, not txnConn, has to retry
	writeRange(t, s, 0, 20)
	if _, err := s.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	h := s.tp.Pending()[0].Committable
	var helper atomic.Bool
	var lost atomic.Int64
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		if helper.Load() {
			return nil, nil, false // the test's own EndTxn below: handled as usual
		}
		// Commit the transaction on another connection, exactly as the
		// sink asked, then drop the sink's connection without answering.
		helper.Store(true)
		var err error
		c.SleepControl(func() { err = endTxnDirect(brokers[0], h) })
		helper.Store(false)
		if err != nil {
			t.Errorf("committing on the side: %v", err)
		}
		lost.Add(1)
		return nil, errors.New("answer lost"), true
	})
	if err := s.NotifyCheckpointComplete(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if lost.Load() != 1 || s.tp.Recommits() != 1 {
		t.Fatalf("answers lost %d, recommits %d; want 1 and 1", lost.Load(), s.tp.Recommits())
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 20))
}

// endTxnDirect commits h's transaction over a connection of its own, with
// the request version the sink uses.
func endTxnDirect(addr string, h txnHandle) error {
	cfg := baseConfig("side")
	b := sarama.NewBroker(addr)
	if err := b.Open(cfg); err != nil {
		return err
	}
	defer b.Close()
	resp, err := b.EndTxn(&sarama.EndTxnRequest{Version: endTxnVersion(cfg.Version), TransactionalID: h.ID,
		ProducerID: h.ProducerID, ProducerEpoch: h.Epoch, TransactionResult: true})
	if err != nil {
		return err
	}
	if resp.Err != sarama.ErrNoError {
		return resp.Err
	}
	return nil
}

// TestExactlyOnceSinkCommitWaitsForBrokerRestart: the broker goes down
// just as a checkpoint completes; the sink's commit finds no broker,
// keeps committing again while it is down, and succeeds once it is back.
func TestExactlyOnceSinkCommitWaitsForBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := devbroker.Start(devbroker.Config{Addr: "127.0.0.1:0", DataDir: dir, Partitions: eosPartitions, Topics: []string{eosTopic}})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	defer func() { b.Close() }()
	brokers := []string{addr}
	node, dctx := eosNode(brokers, nil), eosCtx("job14", 0, 1)
	dctx.Metrics = &dataflow.Counters{}
	s := mustEOSSink(t, node, dctx)
	shortRetries(s)
	writeRange(t, s, 0, 100)
	if _, err := s.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	b.Close()
	bp := dctx.Metrics.Backpressured()
	done := notifyAsync(s, 1)
	eventually(t, 30*time.Second, "the commit waiting on the broker, counted as backpressure", func() bool {
		return dctx.Metrics.Backpressured() > bp
	})
	select {
	case err := <-done:
		t.Fatalf("the commit ended while the broker was down: %v", err)
	default:
	}
	b, err = devbroker.Start(devbroker.Config{Addr: addr, DataDir: dir, Partitions: eosPartitions, Topics: []string{eosTopic}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the commit did not succeed once the broker was back")
	}
	writeRange(t, s, 100, 150)
	if _, err := s.Snapshot(2); err != nil {
		t.Fatal(err)
	}
	if err := s.NotifyCheckpointComplete(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 150))
}
