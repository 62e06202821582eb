package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-stream/weir/dataflow"
)

// onlyLink is the one link a subtask's counters hold.
func onlyLink(t *testing.T, c *dataflow.Counters) dataflow.LinkStatus {
	t.Helper()
	ls := c.Links()
	if len(ls) != 1 {
		t.Fatalf("want one link, got %+v", ls)
	}
	return ls[0]
}

func waitUnreachable(t *testing.T, c *dataflow.Counters, stoppedAt time.Time) dataflow.LinkStatus {
	t.Helper()
	eventually(t, 30*time.Second, "the link reported unreachable", func() bool {
		l := onlyLink(t, c)
		return l.Known && !l.Connected
	})
	l := onlyLink(t, c)
	if l.LastError == "" || l.Since.Before(stoppedAt) {
		t.Fatalf("unreachable link without its error or since when: %+v (broker stopped at %s)", l, stoppedAt)
	}
	return l
}

// A source whose broker stops says so within a few seconds, long before
// its stall timeout fails the task.
func TestSourceLinkReportsBrokerDown(t *testing.T) {
	t.Parallel()
	c, brokers := newCluster(t, kfake.SeedTopics(1, "p"))
	produce(t, newProducer(t, brokers), "p", 0, `{"a":1}`)
	counters := &dataflow.Counters{}
	out := newTestOutput()
	_, done := startSource(t, testCtx(t, 60*time.Second), kafkaNode("src", brokers, "p", nil),
		&dataflow.Context{Metrics: counters}, out, nil)
	eventually(t, 10*time.Second, "first record", func() bool { return out.n() == 1 })
	if l := onlyLink(t, counters); !l.Known || !l.Connected || l.Node != "src" || l.Target != linkTarget(brokers, "p") {
		t.Fatalf("a reading source: want a connected link, got %+v", l)
	}
	stopped := time.Now()
	c.Close()
	l := waitUnreachable(t, counters, stopped)
	select {
	case err := <-done:
		t.Fatalf("the source ended before its stall timeout: %v", err)
	default:
	}
	t.Logf("link: %+v", l)
}

// An exactly-once sink whose broker stops while it flushes a transaction
// (the barrier's pre-commit) is blocked: that shows as backpressure while
// it lasts, not only after, and as an unreachable link.
func TestSinkBlockedOnStoppedBrokerIsBackpressuredAndUnreachable(t *testing.T) {
	t.Parallel()
	c, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	dctx := eosCtx("job-link", 0, 1)
	counters := &dataflow.Counters{}
	dctx.Metrics = counters
	s := mustEOSSink(t, eosNode(brokers, nil), dctx)
	s.flushTimeout = 10 * time.Second
	writeRange(t, s, 0, 50) // begins the transaction: the broker is up
	if l := onlyLink(t, counters); !l.Connected {
		t.Fatalf("an open sink: want a connected link, got %+v", l)
	}
	before := counters.BackpressuredNs.Load() // beginning the transaction waited a little
	stopped := time.Now()
	c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := s.Snapshot(1)
		done <- err
	}()
	waitUnreachable(t, counters, stopped)
	eventually(t, 30*time.Second, "backpressure while blocked", func() bool { return counters.Backpressured() >= time.Duration(before)+500*time.Millisecond })
	select {
	case err := <-done:
		t.Fatalf("the pre-commit returned while the broker is down: %v", err)
	default:
	}
	if counters.BackpressuredNs.Load() != before {
		t.Fatal("the wait in progress was already added: want it counted live, once")
	}
	if err := wait(t, done, 30*time.Second); err == nil {
		t.Fatal("a pre-commit with the broker down succeeded")
	}
	if got := counters.BackpressuredNs.Load(); got < before+int64(500*time.Millisecond) {
		t.Fatalf("the ended wait was not added: %s", time.Duration(got))
	}
}

// An at-least-once sink's flush on a stopped broker is counted as
// backpressure once it ends (with the delivery error).
func TestSinkFlushOnStoppedBrokerCountsBackpressure(t *testing.T) {
	t.Parallel()
	c, brokers := newCluster(t, kfake.SeedTopics(1, "out"))
	counters := &dataflow.Counters{}
	s := openSink(t, sinkNode(brokers, "out", nil), &dataflow.Context{Metrics: counters})
	c.Close()
	for i := range 10 {
		if err := s.Process(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"a": int64(i)})}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Snapshot(1); err == nil {
		t.Fatal("a checkpoint with the broker down succeeded")
	}
	if counters.BackpressuredNs.Load() <= 0 {
		t.Fatal("the blocked flush was not counted as backpressure")
	}
	eventually(t, 30*time.Second, "the link reported unreachable", func() bool { l := onlyLink(t, counters); return l.Known && !l.Connected })
}
