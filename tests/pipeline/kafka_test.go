package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// badPartition and badOffset locate the malformed message of kafkaInput.
const (
	badPartition = 1
	badOffset    = 3
	perPartition = 20
)

// kafkaInput writes perPartition JSON records {"id", "v"} to each of two
// partitions of topic, with one malformed message at badPartition/badOffset
// in place of a record. It returns the ids written.
func kafkaInput(t *testing.T, c *cluster.Cluster, topic string) []int64 {
	t.Helper()
	c.CreateTopic(t, topic, 2)
	var msgs []cluster.Message
	var ids []int64
	for p := int32(0); p < 2; p++ {
		for off := int64(0); off < perPartition; off++ {
			if p == badPartition && off == badOffset {
				msgs = append(msgs, cluster.Message{Partition: p, Value: []byte(`{"id": oops`)})
				continue
			}
			id := int64(p)*1000 + off
			ids = append(ids, id)
			msgs = append(msgs, cluster.Message{Partition: p, Value: []byte(fmt.Sprintf(`{"id": %d, "v": %d}`, id, id*2))})
		}
	}
	c.Produce(t, topic, msgs...)
	return ids
}

func kafkaJob(name, in, out, onError string) string {
	return spec(`name: {{name}}
parallelism: 2
restart: {strategy: none}
on_error: {{onError}}
pipeline:
  - name: src
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: {{in}}, bounded: true}
  - name: plus
    map: {w: v + 1}
  - name: out
    parallelism: 1
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: {{out}}, key: string(id)}
`, "{{name}}", name, "{{in}}", in, "{{out}}", out, "{{onError}}", onError)
}

// checkOutput asserts that topic out holds exactly one message per id, keyed
// by the id, with the computed field.
func checkOutput(t *testing.T, c *cluster.Cluster, out string, ids []int64) {
	t.Helper()
	var got, want []string
	for _, m := range c.ReadTopic(t, out) {
		got = append(got, string(m.Key)+" "+string(m.Value))
	}
	for _, id := range ids {
		want = append(want, fmt.Sprintf("%d %s", id, line(map[string]any{"id": id, "v": id * 2, "w": id*2 + 1})))
	}
	sameLines(t, "topic "+out, got, want)
}

// Kafka in → Kafka out over a bounded source, with each error policy for a
// malformed JSON message.
func TestKafkaErrorPolicies(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2, Kafka: true})

	t.Run("skip", func(t *testing.T) {
		ids := kafkaInput(t, c, "in-skip")
		id := c.Submit(t, kafkaJob("skip", "in-skip", "out-skip", "skip"))
		c.WaitState(t, id, "FINISHED", 40*time.Second)
		checkOutput(t, c, "out-skip", ids)
		if n := c.JobCounter(t, "weir_job_skipped_invalid_total", id, "src"); n != 1 {
			t.Errorf("skipped %v records, want 1", n)
		}
	})

	t.Run("dead_letter", func(t *testing.T) {
		ids := kafkaInput(t, c, "in-dlq")
		c.CreateTopic(t, "dlq", 1)
		id := c.Submit(t, kafkaJob("dlq", "in-dlq", "out-dlq", "{action: dead_letter, topic: dlq, brokers: [\"${KAFKA_BROKERS}\"]}"))
		c.WaitState(t, id, "FINISHED", 40*time.Second)
		checkOutput(t, c, "out-dlq", ids)
		dl := c.ReadTopic(t, "dlq")
		if len(dl) != 1 {
			t.Fatalf("dead-letter topic holds %d messages, want 1: %+v", len(dl), dl)
		}
		m := dl[0]
		if string(m.Value) != `{"id": oops` || !strings.Contains(m.Headers["weir.error"], "invalid JSON") ||
			m.Headers["weir.node"] != "src" || m.Headers["weir.origin"] != fmt.Sprintf("topic in-dlq partition %d offset %d", badPartition, badOffset) {
			t.Fatalf("dead letter: value %q headers %v", m.Value, m.Headers)
		}
		if n := c.JobCounter(t, "weir_job_dead_lettered_total", id, "src"); n != 1 {
			t.Errorf("dead-lettered %v records, want 1", n)
		}
	})

	t.Run("fail", func(t *testing.T) {
		kafkaInput(t, c, "in-fail")
		id := c.Submit(t, kafkaJob("fail", "in-fail", "out-fail", "fail"))
		j := c.WaitState(t, id, "FAILED", 40*time.Second)
		t.Logf("failure cause: %s", j.FailureCause)
		for _, want := range []string{"in-fail", fmt.Sprintf("partition %d", badPartition), fmt.Sprintf("offset %d", badOffset), "invalid JSON", "src"} {
			if !strings.Contains(j.FailureCause, want) {
				t.Errorf("failure cause %q does not name %q", j.FailureCause, want)
			}
		}
	})
}
