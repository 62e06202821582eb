package cluster

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/connectors/kafka"
)

// Message is one Kafka message to produce or one read back.
type Message struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
	Timestamp time.Time
}

func (c *Cluster) saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "weir-test"
	cfg.Metadata.AllowAutoTopicCreation = false
	return cfg
}

func (c *Cluster) needKafka(t testing.TB) {
	t.Helper()
	if c.broker == nil {
		t.Fatal("cluster: started without Kafka (Config.Kafka)")
	}
}

// CreateTopic creates a topic with the given partitions (<= 0: the broker's
// default).
func (c *Cluster) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	c.needKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(ctx, []string{c.KafkaAddr()}, topic, partitions); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}

// Produce writes messages to topic, each to its Partition (the topic must
// exist with enough partitions), and waits for every acknowledgement.
func (c *Cluster) Produce(t testing.TB, topic string, msgs ...Message) {
	t.Helper()
	c.needKafka(t)
	cfg := c.saramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer([]string{c.KafkaAddr()}, cfg)
	if err != nil {
		t.Fatalf("cluster: producer: %v", err)
	}
	defer p.Close()
	pms := make([]*sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		pm := &sarama.ProducerMessage{Topic: topic, Partition: m.Partition, Value: sarama.ByteEncoder(m.Value), Timestamp: m.Timestamp}
		if m.Key != nil {
			pm.Key = sarama.ByteEncoder(m.Key)
		}
		for k, v := range m.Headers {
			pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		pms[i] = pm
	}
	if err := p.SendMessages(pms); err != nil {
		t.Fatalf("cluster: produce to %s: %v", topic, err)
	}
}

// ReadTopic returns every message of topic up to the end offsets it has now,
// ordered by partition and offset. Call it once the writers are done (the
// job FINISHED): what it returns is then exactly what they wrote.
func (c *Cluster) ReadTopic(t testing.TB, topic string) []Message {
	t.Helper()
	c.needKafka(t)
	client, err := sarama.NewClient([]string{c.KafkaAddr()}, c.saramaConfig())
	if err != nil {
		t.Fatalf("cluster: kafka client: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("cluster: partitions of %s: %v", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("cluster: consumer: %v", err)
	}
	defer consumer.Close()
	var out []Message
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("cluster: end offset of %s/%d: %v", topic, p, err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("cluster: start offset of %s/%d: %v", topic, p, err)
		}
		if start >= end {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			t.Fatalf("cluster: consume %s/%d: %v", topic, p, err)
		}
		timeout := time.NewTimer(20 * time.Second)
		for next := start; next < end; {
			select {
			case m := <-pc.Messages():
				next = m.Offset + 1
				msg := Message{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
				if len(m.Headers) > 0 {
					msg.Headers = map[string]string{}
					for _, h := range m.Headers {
						msg.Headers[string(h.Key)] = string(h.Value)
					}
				}
				out = append(out, msg)
			case err := <-pc.Errors():
				pc.Close()
				t.Fatalf("cluster: consume %s/%d: %v", topic, p, err)
			case <-timeout.C:
				pc.Close()
				t.Fatalf("cluster: consume %s/%d: stuck at offset %d of %d", topic, p, next, end)
			}
		}
		timeout.Stop()
		pc.Close()
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}
