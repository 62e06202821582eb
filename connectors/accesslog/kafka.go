package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = "weir-accesslog"
	sc.Version = sarama.V2_8_0_0
	sc.Metadata.AllowAutoTopicCreation = false
	return sc
}

// Produce writes the log cfg describes to topic, each event to its partition
// (Event partition, key the address, value Event.AppendJSON), with an
// idempotent producer and acks=all so a partition keeps the generated order.
// The topic is created with cfg.Partitions partitions when missing; an
// existing topic with fewer partitions is an error. rate > 0 limits the
// events per second; cfg.Events 0 with rate > 0 produces until ctx is
// cancelled and then returns nil. progress, when not nil, is called from
// another goroutine, one call at a time, with the number of events
// acknowledged so far.
//
// secure, when given, sets the client's TLS and SASL (kafka.Security.Apply).
func Produce(ctx context.Context, brokers []string, topic string, cfg Config, rate float64, progress func(n int64), secure ...func(*sarama.Config)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.WithDefaults()
	if cfg.Events == 0 && rate <= 0 {
		return errors.New("accesslog: an unbounded log (events 0) needs a rate > 0")
	}
	sc := saramaConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 10
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Flush.Bytes = 256 << 10
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	for _, f := range secure {
		f(sc)
	}
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return fmt.Errorf("connect to Kafka brokers %s: %w", strings.Join(brokers, ","), err)
	}
	defer client.Close()
	if err := ensureTopic(ctx, client, topic, cfg.Partitions); err != nil {
		return err
	}
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}

	var (
		acked    atomic.Int64
		firstErr error
		errOnce  sync.Once
		failed   = make(chan struct{})
		drained  = make(chan struct{})
	)
	go func() {
		defer close(drained)
		succ, errs := producer.Successes(), producer.Errors()
		for succ != nil || errs != nil {
			select {
			case _, ok := <-succ:
				if !ok {
					succ = nil
					continue
				}
				n := acked.Add(1)
				if progress != nil && n%1000 == 0 {
					progress(n)
				}
			case pe, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				errOnce.Do(func() {
					firstErr = fmt.Errorf("produce to %s partition %d: %w", topic, pe.Msg.Partition, pe.Err)
					close(failed)
				})
			}
		}
	}()

	g := NewGenerator(cfg)
	start := time.Now()
	var stopErr error
produce:
	for i := int64(0); cfg.Events == 0 || i < cfg.Events; i++ {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					stopErr = ctx.Err()
					break produce
				case <-failed:
					t.Stop()
					break produce
				}
			}
		}
		e, p, _ := g.At(i)
		msg := &sarama.ProducerMessage{
			Topic:     topic,
			Partition: p,
			Key:       sarama.StringEncoder(e.IP),
			Value:     sarama.ByteEncoder(e.AppendJSON(make([]byte, 0, 96))),
		}
		select {
		case producer.Input() <- msg:
		case <-ctx.Done():
			stopErr = ctx.Err()
			break produce
		case <-failed:
			break produce
		}
	}
	producer.AsyncClose()
	<-drained
	if progress != nil {
		progress(acked.Load())
	}
	if firstErr != nil {
		return firstErr
	}
	if stopErr != nil && cfg.Events > 0 {
		return stopErr
	}
	return nil
}

// ensureTopic creates topic with n partitions unless it exists with at
// least n, and waits until its partitions are in the client's metadata.
func ensureTopic(ctx context.Context, client sarama.Client, topic string, n int32) error {
	admin, err := sarama.NewClusterAdmin(addrs(client), client.Config())
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer admin.Close()
	metas, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	have := int32(-1)
	for _, m := range metas {
		if m.Name == topic && m.Err == sarama.ErrNoError {
			have = int32(len(m.Partitions))
		}
	}
	switch {
	case have < 0:
		rf := int16(min(3, len(client.Brokers())))
		err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: n, ReplicationFactor: max(rf, 1)}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s with %d partitions: %w", topic, n, err)
		}
	case have < n:
		return fmt.Errorf("topic %s has %d partitions, the log needs %d: use a new topic or fewer partitions", topic, have, n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := client.RefreshMetadata(topic); err == nil {
			if ps, err := client.Partitions(topic); err == nil && int32(len(ps)) >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: partitions not visible after 30s", topic)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func addrs(client sarama.Client) []string {
	var out []string
	for _, b := range client.Brokers() {
		out = append(out, b.Addr())
	}
	return out
}

// Malformed is an output record that could not be decoded. Callers count
// it as wrong (Result.AddMalformed), never ignore it.
type Malformed struct {
	Partition int32
	Offset    int64
	Reason    string
	Value     []byte
}

func (m Malformed) String() string {
	return fmt.Sprintf("partition %d offset %d: %s", m.Partition, m.Offset, m.Reason)
}

// ReadOutputs reads every committed record of topic (isolation
// read_committed) from the start of every partition, until nothing new has
// arrived for idle, and decodes each as a window result: a JSON object with
// "ip", "window_start" (or "start"), "window_end" (or "end") as epoch ms or
// RFC 3339, "count" and "bytes" (or "sum_bytes"). Records that do not
// decode are returned separately, each with its partition and offset.
// secure, when given, sets the client's TLS and SASL (kafka.Security.Apply).
func ReadOutputs(ctx context.Context, brokers []string, topic string, idle time.Duration, secure ...func(*sarama.Config)) ([]OutputRecord, []Malformed, error) {
	sc := saramaConfig()
	for _, f := range secure {
		f(sc)
	}
	sc.Consumer.IsolationLevel = sarama.ReadCommitted
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to Kafka brokers %s: %w", strings.Join(brokers, ","), err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, nil, fmt.Errorf("consumer: %w", err)
	}
	defer consumer.Close()

	msgs := make(chan *sarama.ConsumerMessage, 1024)
	errs := make(chan error, len(parts))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, nil, fmt.Errorf("consume %s partition %d: %w", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				// sarama requires both channels be drained until closed.
				pc.AsyncClose()
				go func() {
					for range pc.Errors() {
					}
				}()
				for range pc.Messages() {
				}
			}()
			for {
				select {
				case m := <-pc.Messages():
					select {
					case msgs <- m:
					case <-stop:
						return
					}
				case e := <-pc.Errors():
					select {
					case errs <- consumeError(topic, p, e):
					default:
					}
					return
				case <-stop:
					return
				}
			}
		}()
	}

	var out []OutputRecord
	var bad []Malformed
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case m := <-msgs:
			if rec, err := DecodeOutput(m.Value); err != nil {
				bad = append(bad, Malformed{Partition: m.Partition, Offset: m.Offset, Reason: err.Error(), Value: m.Value})
			} else {
				out = append(out, rec)
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(idle)
		case err := <-errs:
			return out, bad, err
		case <-ctx.Done():
			return out, bad, ctx.Err()
		case <-timer.C:
			return out, bad, nil
		}
	}
}

// consumeError names the partition that failed; an answer that does not
// decode says so plainly, since the fault is then the broker's data, not the
// job's output (seen with dev broker data directories damaged by a crash of
// a broker that forgot auto-created topics: "invalid array length").
func consumeError(topic string, p int32, err error) error {
	var pde sarama.PacketDecodingError
	if errors.As(err, &pde) {
		return fmt.Errorf("consume %s partition %d: the broker's answer does not decode, so the data it serves for this partition is damaged (not a verdict on the job's output): %w", topic, p, err)
	}
	return fmt.Errorf("consume %s partition %d: %w", topic, p, err)
}

// DecodeOutput decodes one window result (see ReadOutputs).
func DecodeOutput(value []byte) (OutputRecord, error) {
	var raw map[string]any
	d := json.NewDecoder(bytes.NewReader(value))
	d.UseNumber()
	if err := d.Decode(&raw); err != nil {
		return OutputRecord{}, fmt.Errorf("not a JSON object: %v", err)
	}
	var rec OutputRecord
	ip, ok := raw["ip"].(string)
	if !ok || ip == "" {
		return rec, fmt.Errorf(`field "ip" missing or not a string in %s`, clip(value))
	}
	rec.IP = ip
	var err error
	if rec.WindowStart, err = intField(raw, "window_start", "start"); err != nil {
		return rec, fmt.Errorf("%v in %s", err, clip(value))
	}
	if rec.WindowEnd, err = intField(raw, "window_end", "end"); err != nil {
		return rec, fmt.Errorf("%v in %s", err, clip(value))
	}
	if rec.Count, err = intField(raw, "count"); err != nil {
		return rec, fmt.Errorf("%v in %s", err, clip(value))
	}
	if rec.Bytes, err = intField(raw, "bytes", "sum_bytes"); err != nil {
		return rec, fmt.Errorf("%v in %s", err, clip(value))
	}
	return rec, nil
}

func intField(raw map[string]any, names ...string) (int64, error) {
	for _, n := range names {
		v, ok := raw[n]
		if !ok {
			continue
		}
		switch x := v.(type) {
		case json.Number:
			if i, err := x.Int64(); err == nil {
				return i, nil
			}
			f, err := x.Float64()
			if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return 0, fmt.Errorf("field %q is not an integer: %s", n, x)
			}
			return int64(f), nil
		case string:
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return 0, fmt.Errorf("field %q is neither epoch ms nor RFC 3339: %q", n, x)
			}
			return t.UnixMilli(), nil
		default:
			return 0, fmt.Errorf("field %q has type %T, want a number", n, v)
		}
	}
	return 0, fmt.Errorf(`field "%s" missing`, strings.Join(names, `" or "`))
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
