package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-stream/weir/connectors/kafka/devbroker"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

const eosTopic = "out"
const eosPartitions = 3

func eosCtx(job string, subtask, par int) *dataflow.Context {
	return &dataflow.Context{JobID: job, Subtask: subtask, Parallelism: par, Logger: slog.New(slog.DiscardHandler)}
}

func eosNode(brokers []string, mod func(*spec.KafkaSink)) *spec.Node {
	return sinkNode(brokers, eosTopic, func(k *spec.KafkaSink) {
		k.Delivery = DeliveryExactlyOnce
		k.Key = "k"
		k.Format = FormatRaw
		if mod != nil {
			mod(k)
		}
	})
}

// newEOSSink builds and opens an exactly-once sink, restoring states first
// when given.
func newEOSSink(t *testing.T, node *spec.Node, dctx *dataflow.Context, states ...[]byte) (*Sink, error) {
	t.Helper()
	s, err := NewSink(node, dctx)
	if err != nil {
		t.Fatal(err)
	}
	s.connectBudget = 2 * time.Second
	if len(states) > 0 {
		if err := s.Restore(states); err != nil {
			return s, err
		}
	}
	return s, s.Open(dctx)
}

func mustEOSSink(t *testing.T, node *spec.Node, dctx *dataflow.Context, states ...[]byte) *Sink {
	t.Helper()
	s, err := newEOSSink(t, node, dctx, states...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(nil) })
	return s
}

// crash drops a sink as a killed process would: no commit, no abort, the
// connections just go away.
func crash(s *Sink) {
	s.closed = true
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
}

func writeRange(t *testing.T, s *Sink, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		r := &dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"k": fmt.Sprintf("k%d", i%11), "value": fmt.Sprintf("v%04d", i)})}
		if err := s.Process(r, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func values(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("v%04d", i))
	}
	return out
}

// readTopic reads every partition of the topic to its end as a reader with
// the given isolation would see it. It first writes an end marker to each
// partition outside any transaction; once a reader has seen every marker
// it has seen everything visible before it (under read_committed, the
// markers are only visible once no transaction before them is open).
func readTopic(t *testing.T, brokers []string, iso kgo.IsolationLevel) []string {
	t.Helper()
	p := newProducer(t, brokers)
	for part := range int32(eosPartitions) {
		produce(t, p, eosTopic, part, "END")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(eosTopic),
		kgo.FetchIsolationLevel(iso), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t, 30*time.Second)
	var out []string
	ends := map[int32]bool{}
	for len(ends) < eosPartitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: saw the end marker of %d partitions of %d (an open transaction holds the rest back?)", eosTopic, len(ends), eosPartitions)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "END" {
				ends[r.Partition] = true
				return
			}
			out = append(out, string(r.Value))
		})
	}
	slices.Sort(out)
	return out
}

func checkExactlyOnce(t *testing.T, got, want []string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	if slices.Equal(got, want) {
		return
	}
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	var dup, missing []string
	for v, n := range seen {
		if n > 1 {
			dup = append(dup, v)
		}
	}
	for _, v := range want {
		if seen[v] == 0 {
			missing = append(missing, v)
		}
	}
	slices.Sort(dup)
	t.Fatalf("read_committed reader saw %d records, want %d: %d duplicated (%.10v), %d missing (%.10v)", len(got), len(want), len(dup), dup, len(missing), missing)
}

// countRequests counts the requests of one kind the broker receives.
func countRequests(c *kfake.Cluster, key kmsg.Key) *atomic.Int64 {
	var n atomic.Int64
	c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		n.Add(1)
		return nil, nil, false
	})
	return &n
}

// TestExactlyOnceSinkCrashAfterPreCommit is the whole protocol against a
// real (in-process) broker: checkpoint 1 commits on notification;
// checkpoint 2 is pre-committed and completes, but the subtask dies before
// the notification, with records after the barrier written in an open
// transaction. A fresh sink restored from checkpoint 2 commits its pending
// transaction and aborts the open one; the replayed records are written
// again. A read_committed reader sees every record exactly once, and a
// read_uncommitted one shows the aborted records were really written.
func TestExactlyOnceSinkCrashAfterPreCommit(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job1", 0, 1)

	s1 := mustEOSSink(t, node, dctx)
	writeRange(t, s1, 0, 100)
	if _, err := s1.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	if err := s1.NotifyCheckpointComplete(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	writeRange(t, s1, 100, 200)
	state2, err := s1.Snapshot(2)
	if err != nil {
		t.Fatal(err)
	}
	if sum := s1.SnapshotSummary(); len(sum.PendingTransactions) != 1 || sum.PendingTransactions[0].CheckpointID != 2 ||
		sum.PendingTransactions[0].TransactionalID != "weir-job1-out-0-1" {
		t.Fatalf("pending after checkpoint 2: %+v, want transaction weir-job1-out-0-1 of checkpoint 2", sum.PendingTransactions)
	}
	writeRange(t, s1, 200, 250) // after barrier 2: replayed after the restore
	if err := s1.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	crash(s1)

	s2 := mustEOSSink(t, node, dctx, state2)
	if s2.eos.committed != 1 {
		t.Fatalf("restore committed %d transactions, want 1 (checkpoint 2's)", s2.eos.committed)
	}
	writeRange(t, s2, 200, 300)
	if _, err := s2.Snapshot(3); err != nil {
		t.Fatal(err)
	}
	if err := s2.NotifyCheckpointComplete(context.Background(), 3); err != nil {
		t.Fatal(err)
	}

	if n := len(s2.eos.conn.coords); n != 0 {
		t.Errorf("%d coordinators cached after every transaction ended, want 0 (one per transaction would grow without bound)", n)
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 300))
	dirty := readTopic(t, brokers, kgo.ReadUncommitted())
	if len(dirty) != 350 {
		t.Fatalf("read_uncommitted saw %d records, want 350 (the 50 aborted ones too)", len(dirty))
	}
}

// TestExactlyOnceSinkAbortsUncheckpointedTransactions: the job restarts
// from checkpoint 1 although checkpoint 2 was pre-committed (it never
// completed). Checkpoint 2's transaction and the open one are aborted: their
// records are never visible.
func TestExactlyOnceSinkAbortsUncheckpointedTransactions(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job2", 0, 1)

	s1 := mustEOSSink(t, node, dctx)
	writeRange(t, s1, 0, 50)
	state1, err := s1.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	writeRange(t, s1, 50, 80)
	if _, err := s1.Snapshot(2); err != nil {
		t.Fatal(err)
	}
	writeRange(t, s1, 80, 90)
	if err := s1.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	crash(s1)

	s2 := mustEOSSink(t, node, dctx, state1)
	writeRange(t, s2, 50, 60)
	if _, err := s2.Snapshot(3); err != nil {
		t.Fatal(err)
	}
	if err := s2.NotifyCheckpointComplete(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 60))
}

// TestExactlyOnceSinkRestartWithoutCheckpoint: a job that fails before its
// first checkpoint completes restarts without a restore; the new attempt
// still aborts what the old one left open, so readers are not held back.
func TestExactlyOnceSinkRestartWithoutCheckpoint(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job3", 0, 1)
	s1 := mustEOSSink(t, node, dctx)
	writeRange(t, s1, 0, 30)
	if _, err := s1.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	writeRange(t, s1, 30, 40)
	if err := s1.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	crash(s1)

	s2 := mustEOSSink(t, node, dctx)
	writeRange(t, s2, 0, 40)
	if _, err := s2.Snapshot(2); err != nil {
		t.Fatal(err)
	}
	if err := s2.NotifyCheckpointComplete(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 40))
}

// TestExactlyOnceSinkSkipsEmptyTransactions: intervals without records
// begin no transaction, so nothing is pending and nothing committed.
func TestExactlyOnceSinkSkipsEmptyTransactions(t *testing.T) {
	c, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job4", 0, 1)
	s := mustEOSSink(t, node, dctx)
	endTxns := countRequests(c, kmsg.EndTxn)
	inits := countRequests(c, kmsg.InitProducerID)
	for n := int64(1); n <= 3; n++ {
		state, err := s.Snapshot(n)
		if err != nil {
			t.Fatal(err)
		}
		st, err := decodeSinkState(state)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Pending) != 0 || st.NextSeq != 0 {
			t.Fatalf("checkpoint %d without records: state %+v, want nothing pending and next_seq 0", n, st)
		}
		if err := s.NotifyCheckpointComplete(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	if n := endTxns.Load() + inits.Load(); n != 0 {
		t.Fatalf("%d EndTxn/InitProducerID requests for empty intervals, want 0", n)
	}
	writeRange(t, s, 0, 5)
	if _, err := s.Snapshot(4); err != nil {
		t.Fatal(err)
	}
	if err := s.NotifyCheckpointComplete(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	if endTxns.Load() != 1 || inits.Load() != 1 {
		t.Fatalf("one interval with records: %d EndTxn, %d InitProducerID; want 1 and 1", endTxns.Load(), inits.Load())
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 5))
}

// TestExactlyOnceSinkRecommitIsIdempotent: restoring the same checkpoint
// twice commits its pending transaction twice; the second commit succeeds
// and nothing is duplicated.
func TestExactlyOnceSinkRecommitIsIdempotent(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job5", 0, 1)
	s1 := mustEOSSink(t, node, dctx)
	writeRange(t, s1, 0, 20)
	state, err := s1.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.NotifyCheckpointComplete(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	crash(s1)
	for range 2 {
		s := mustEOSSink(t, node, dctx, state)
		if s.eos.committed != 1 {
			t.Fatalf("restore committed %d, want 1", s.eos.committed)
		}
		crash(s)
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 20))
}

// fence takes a transactional id over as another producer would (or as the
// broker does when the transaction times out): InitProducerID bumps the
// epoch and aborts the open transaction.
func fence(t *testing.T, brokers []string, id string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := req.RequestWith(testCtx(t, 10*time.Second), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("fence %s: %v (code %d)", id, err, resp.ErrorCode)
	}
}

// TestExactlyOnceSinkFencedRecommitFailsTheJob: a pending transaction the
// broker aborted (timeout, or another producer took the id over) cannot be
// committed on restore: Open fails with ErrTxnFenced naming the
// transaction, never a silent success.
func TestExactlyOnceSinkFencedRecommitFailsTheJob(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job6", 0, 1)
	s1 := mustEOSSink(t, node, dctx)
	writeRange(t, s1, 0, 10)
	state, err := s1.Snapshot(7)
	if err != nil {
		t.Fatal(err)
	}
	crash(s1)
	fence(t, brokers, "weir-job6-out-0-0")
	s2, err := newEOSSink(t, node, dctx, state)
	defer s2.Close(nil)
	if !errors.Is(err, ErrTxnFenced) || !strings.Contains(err.Error(), `"weir-job6-out-0-0"`) || !strings.Contains(err.Error(), "checkpoint 7") {
		t.Fatalf("Open: %v\nwant ErrTxnFenced naming transaction weir-job6-out-0-0 of checkpoint 7", err)
	}
}

// TestExactlyOnceSinkCommitFailureFailsTheTask: a fenced transaction on a
// checkpoint's notification fails the task, naming the transaction; it
// stays pending.
func TestExactlyOnceSinkCommitFailureFailsTheTask(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node, dctx := eosNode(brokers, nil), eosCtx("job7", 0, 1)
	s := mustEOSSink(t, node, dctx)
	writeRange(t, s, 0, 10)
	if _, err := s.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	fence(t, brokers, "weir-job7-out-0-0")
	err := s.NotifyCheckpointComplete(context.Background(), 1)
	if !errors.Is(err, ErrTxnFenced) || !strings.Contains(err.Error(), `"weir-job7-out-0-0"`) {
		t.Fatalf("NotifyCheckpointComplete: %v\nwant ErrTxnFenced naming weir-job7-out-0-0", err)
	}
	if len(s.SnapshotSummary().PendingTransactions) != 1 {
		t.Fatal("the failed transaction is no longer pending")
	}
}

// TestExactlyOnceSinkRescale: two subtasks' states restored into one
// subtask (parallelism 2 -> 1): both pending transactions are committed and
// the ids of the old subtask 1 are fenced too.
func TestExactlyOnceSinkRescale(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node := eosNode(brokers, nil)
	var states [][]byte
	for sub := range 2 {
		s := mustEOSSink(t, node, eosCtx("job8", sub, 2))
		writeRange(t, s, sub*100, sub*100+20)
		st, err := s.Snapshot(1)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
		writeRange(t, s, 500+sub*100, 510+sub*100) // open, aborted
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		crash(s)
	}
	s := mustEOSSink(t, node, eosCtx("job8", 0, 1), states...)
	if s.eos.committed != 2 {
		t.Fatalf("committed %d, want 2", s.eos.committed)
	}
	want := append(values(0, 20), values(100, 120)...)
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), want)
}

// TestExactlyOnceSinkEndOfInputCommits: a bounded input's tail after the
// last checkpoint is committed when the sink closes after the final
// watermark; a cancelled sink aborts its open transaction instead.
func TestExactlyOnceSinkEndOfInputCommits(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	node := eosNode(brokers, nil)
	s := mustEOSSink(t, node, eosCtx("job9", 0, 1))
	writeRange(t, s, 0, 10)
	if _, err := s.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	writeRange(t, s, 10, 15)
	if err := s.ProcessWatermark(dataflow.MaxWatermark, newTestOutput()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(nil); err != nil {
		t.Fatal(err)
	}
	c := mustEOSSink(t, node, eosCtx("job10", 0, 1))
	writeRange(t, c, 100, 110)
	if err := c.Close(nil); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 15))
}

// TestExactlyOnceSinkSurvivesBrokerRestart: the broker (with a data
// directory, so topics and transactions persist) stops and starts again on
// the same address between writes, while a transaction is open and
// another is pending. The sink's retries carry it over: every record once.
func TestExactlyOnceSinkSurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := devbroker.Start(devbroker.Config{Addr: "127.0.0.1:0", DataDir: dir, Partitions: eosPartitions, Topics: []string{eosTopic}})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	defer func() { b.Close() }()
	brokers := []string{addr}
	node, dctx := eosNode(brokers, nil), eosCtx("job11", 0, 1)
	s := mustEOSSink(t, node, dctx)
	writeRange(t, s, 0, 100)
	if _, err := s.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	writeRange(t, s, 100, 150)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	b.Close()
	b, err = devbroker.Start(devbroker.Config{Addr: addr, DataDir: dir, Partitions: eosPartitions, Topics: []string{eosTopic}})
	if err != nil {
		t.Fatal(err)
	}

	if err := s.NotifyCheckpointComplete(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	writeRange(t, s, 150, 200)
	if _, err := s.Snapshot(2); err != nil {
		t.Fatal(err)
	}
	if err := s.NotifyCheckpointComplete(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, readTopic(t, brokers, kgo.ReadCommitted()), values(0, 200))
}

// TestSinkRestoreChecksStates: an exactly-once sink refuses a state it
// cannot decode; an at-least-once sink refuses a state with pending
// transactions (ignoring it would lose them) but takes one without.
func TestSinkRestoreChecksStates(t *testing.T) {
	brokers := []string{"127.0.0.1:1"}
	eos, err := NewSink(eosNode(brokers, nil), eosCtx("j", 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := eos.Restore([][]byte{[]byte("{not json")}); !errors.Is(err, ErrBadSinkState) {
		t.Fatalf("garbage state: %v, want ErrBadSinkState", err)
	}
	base := txnBase("j", "out", 0)
	pending, _ := encodeSinkState(sinkState{Job: "j", Base: base, NextSeq: 2, Pending: []pendingTxn{pend(base, 1, 4, 0, 3)}})
	idle, _ := encodeSinkState(sinkState{Job: "j", Base: base, NextSeq: 2})
	alo, err := NewSink(sinkNode(brokers, eosTopic, nil), eosCtx("j", 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := alo.Restore([][]byte{nil, idle}); err != nil {
		t.Fatalf("at-least-once sink, state without pending transactions: %v", err)
	}
	if err := alo.Restore([][]byte{pending}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "restore with delivery exactly-once") {
		t.Fatalf("at-least-once sink, pending transactions: %v, want ErrConfig saying to restore with exactly-once", err)
	}
	if _, err := NewSink(eosNode(brokers, nil), eosCtx("", 0, 1)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "job id") {
		t.Fatalf("no job id: %v, want ErrConfig", err)
	}
}
