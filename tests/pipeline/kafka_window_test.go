package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Event-time windows over Kafka input with timestamps chosen by the test:
// a bounded source with more subtasks (3) than partitions (2), so one
// subtask has nothing to read and ends at once, keyed into a window of 2
// and written to Kafka keyed by user. The counts are exact.
func TestKafkaWindowBounded(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4, Kafka: true})
	c.CreateTopic(t, "clicks", 2)
	users := []string{"ann", "bob", "cid"}
	type wk struct {
		user  string
		start int64
	}
	want := map[wk]int64{}
	var msgs []cluster.Message
	for i := int64(0); i < 120; i++ {
		u := users[i%3]
		ts := t0 + i*37 // both partitions in order of time
		msgs = append(msgs, cluster.Message{Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"user": %q, "ts": %d}`, u, ts))})
		want[wk{u, ts - ts%1000}]++
	}
	c.Produce(t, "clicks", msgs...)
	id := c.Submit(t, `name: clicks
pipeline:
  - name: src
    parallelism: 3
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: clicks, bounded: true}
      schema: {user: string, ts: int}
      event_time: {field: ts}
  - name: by-user
    parallelism: 3
    key_by: user
  - name: per-second
    parallelism: 2
    window:
      tumbling: 1s
      aggregates: {clicks: count()}
  - name: out
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: clicks-per-second, key: user}
`)
	j := c.WaitState(t, id, "FINISHED", 40*time.Second)
	var got, wantLines []string
	for _, m := range c.ReadTopic(t, "clicks-per-second") {
		got = append(got, string(m.Key)+" "+canonical(string(m.Value)))
	}
	for k, n := range want {
		wantLines = append(wantLines, k.user+" "+line(map[string]any{"user": k.user, "window_start": k.start, "window_end": k.start + 1000, "clicks": n}))
	}
	sameLines(t, "clicks per second\n"+cluster.Describe(j), got, wantLines)
}

// An unbounded Kafka source whose records all sit in one of four
// partitions: the empty partitions turn idle after idle_timeout and stop
// holding the watermark back, so windows fire while the job runs.
func TestKafkaIdlePartitions(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 3, Kafka: true})
	c.CreateTopic(t, "sparse", 4)
	var msgs []cluster.Message
	for i := int64(0); i < 10; i++ {
		msgs = append(msgs, cluster.Message{Partition: 0, Value: []byte(fmt.Sprintf(`{"k": "a", "ts": %d}`, t0+i))})
	}
	// Moves partition 0's watermark past the first window.
	msgs = append(msgs, cluster.Message{Partition: 0, Value: []byte(fmt.Sprintf(`{"k": "a", "ts": %d}`, t0+5000))})
	c.Produce(t, "sparse", msgs...)
	id := c.Submit(t, `name: idle
pipeline:
  - name: src
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: sparse}
      event_time: {field: ts, idle_timeout: 300ms, watermark_interval: 50ms}
  - name: by-k
    key_by: k
  - name: win
    window:
      tumbling: 1s
      aggregates: {n: count()}
  - name: out
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: sparse-out}
`)
	c.WaitState(t, id, "RUNNING", 10*time.Second)
	want := line(map[string]any{"k": "a", "window_start": t0, "window_end": t0 + 1000, "n": int64(10)})
	var got []cluster.Message
	cluster.Eventually(t, 20*time.Second, func() bool {
		c.CreateTopic(t, "sparse-out", 1)
		got = c.ReadTopic(t, "sparse-out")
		return len(got) > 0
	}, "the first window to fire")
	if len(got) != 1 || canonical(string(got[0].Value)) != want {
		t.Fatalf("output %+v, want exactly %s", got, want)
	}
	c.Cancel(t, id)
	c.WaitState(t, id, "CANCELLED", 10*time.Second)
}
