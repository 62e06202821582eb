package main

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// outputWatcher reads a Kafka topic from its start with a franz-go consumer
// and remembers, for every record, when it was written and when it arrived
// here. "Written" is the record's CreateTime: weir's Kafka sink leaves the
// message timestamp unset, so sarama stamps it with the wall clock when the
// sink hands the message over (millisecond resolution). The benchmark and
// the workers run on one machine, so that clock is the benchmark's clock.
type outputWatcher struct {
	client *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	recs []outputRecord
}

type outputRecord struct {
	written, arrived time.Time
}

func watchOutput(brokers, topic string) (*outputWatcher, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// What a downstream reader sees; the same as read_uncommitted for
		// an at-least-once sink, which writes no transactions.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &outputWatcher{client: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			w.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				w.recs = append(w.recs, outputRecord{written: r.Timestamp, arrived: now})
			})
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// close stops the consumer and waits for its goroutine.
func (w *outputWatcher) close() {
	w.cancel()
	<-w.done
	w.client.Close()
}

// count is the number of records seen so far.
func (w *outputWatcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.recs)
}

// firstWrittenAfter returns the earliest record written strictly after t
// (the millisecond of its timestamp is later than t), if one has arrived.
func (w *outputWatcher) firstWrittenAfter(t time.Time) (outputRecord, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var best outputRecord
	found := false
	for _, r := range w.recs {
		if r.written.After(t) && (!found || r.written.Before(best.written)) {
			best, found = r, true
		}
	}
	return best, found
}

// writeTimes returns the write times of every record seen so far.
func (w *outputWatcher) writeTimes() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	ts := make([]time.Time, len(w.recs))
	for i, r := range w.recs {
		ts[i] = r.written
	}
	return ts
}
