package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-stream/weir/internal/cluster"
)

// A slow Kafka sink (the broker holds every produce request for 100 ms)
// behind an exchange: the sink's producer fills up, the sink stops taking
// records, its input runs out of credit and the source is backpressured
// (it reports blocked time), yet every record arrives, in order.
func TestBackpressureSlowSink(t *testing.T) {
	const count = 50_000
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 1, Kafka: true})
	c.CreateTopic(t, "slow", 1)
	kc := c.Broker().Cluster()
	kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == "slow" {
				kc.SleepControl(func() { <-time.After(100 * time.Millisecond) })
			}
		}
		return nil, nil, false // then handle it as usual
	})
	id := c.Submit(t, fmt.Sprintf(`name: backpressure
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: %d}}
  - name: text
    select: {value: string(id)}
  - name: out
    partition: rebalance
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: slow, format: raw}
`, count))
	j := c.WaitState(t, id, "FINISHED", 50*time.Second)
	got := c.ReadTopic(t, "slow")
	if len(got) != count {
		t.Fatalf("%d messages, want %d\n%s", len(got), count, cluster.Describe(j))
	}
	for i, m := range got {
		if string(m.Value) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, m.Value)
		}
	}
	var src *int64
	for _, v := range j.Vertices {
		if v.ID == "gen" {
			src = &v.Subtasks[0].BackpressuredMs
		}
	}
	if src == nil || *src <= 0 {
		t.Fatalf("source not backpressured\n%s", cluster.Describe(j))
	}
	t.Logf("source backpressured for %d ms", *src)
}

// A job whose Kafka sink is stuck (the broker never answers its produce
// requests) can still be cancelled: the blocked sink gives up when its task
// is cancelled.
//
// On cancellation the runtime aborts the sink (dataflow.Aborter) instead of
// closing it: Close would wait up to 30 s for acknowledgements that never
// come, and the job would stay CANCELLING.
func TestCancelStuckKafkaSink(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2, Kafka: true})
	c.CreateTopic(t, "stuck", 1)
	kc := c.Broker().Cluster()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the cluster's Terminate
	kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == "stuck" {
				kc.SleepControl(func() { <-release })
			}
		}
		return nil, nil, false
	})
	id := c.Submit(t, `name: stuck
pipeline:
  - name: gen
    source: {datagen: {profile: sequence}}
  - name: out
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: stuck}
`)
	c.WaitState(t, id, "RUNNING", 10*time.Second)
	cluster.Eventually(t, 10*time.Second, func() bool {
		return c.Job(t, id).Vertices[0].Subtasks[0].RecordsIn > 5000
	}, "the sink to fill up")
	c.Cancel(t, id)
	c.WaitState(t, id, "CANCELLED", 15*time.Second)
}
