package kafka

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Dead-letter message headers.
const (
	HeaderError  = "weir.error"  // why the record failed
	HeaderNode   = "weir.node"   // the node whose policy sent it
	HeaderOrigin = "weir.origin" // where it was read, e.g. "topic t partition 0 offset 7"
)

// deadLetter is the dead_letter error policy: it writes each failed record to
// a Kafka topic and waits for the acknowledgement, so a record is either in
// the dead-letter topic or the task fails; none is silently lost.
type deadLetter struct {
	node     string
	topic    string
	counters *dataflow.Counters
	client   sarama.Client
	producer sarama.SyncProducer
	once     sync.Once
}

// NewDeadLetter connects to the policy's brokers and returns the handler and
// a Closer that releases its producer.
func NewDeadLetter(node string, policy *spec.ErrorPolicy, counters *dataflow.Counters) (dataflow.ErrorHandler, io.Closer, error) {
	if policy == nil || policy.Action != spec.OnErrorDeadLetter {
		return nil, nil, fmt.Errorf("%w: node %s: not a dead_letter policy", ErrConfig, node)
	}
	var problems []string
	if policy.Topic == "" {
		problems = append(problems, "topic is empty")
	}
	if len(policy.Brokers) == 0 {
		problems = append(problems, "brokers is empty")
	}
	if len(problems) > 0 {
		return nil, nil, fmt.Errorf("%w: node %s: on_error dead_letter: %s", ErrConfig, node, strings.Join(problems, "; "))
	}
	c := baseConfig(node + "-dlq")
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	c.Producer.Timeout = 10 * time.Second
	client, _, err := connect(context.Background(), slices.Clone(policy.Brokers), policy.Topic, c, connectTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("node %s: dead-letter topic: %w", node, err)
	}
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("node %s: dead-letter topic %q: %w", node, policy.Topic, err)
	}
	d := &deadLetter{node: node, topic: policy.Topic, counters: counters, client: client, producer: p}
	return d, closerFunc(d.close), nil
}

// Handle writes the record (raw as read, else its fields as JSON) with the
// reason in headers. It returns an error, failing the task, when the write
// is not acknowledged.
func (d *deadLetter) Handle(r *dataflow.Record, raw []byte, cause error) error {
	if r == nil {
		r = &dataflow.Record{}
	}
	value := raw
	if value == nil {
		b, err := dataflow.AppendJSON(nil, r.Fields)
		if err != nil {
			b = []byte(r.Fields.String())
		}
		value = b
	}
	reason := "unknown error"
	if cause != nil {
		reason = cause.Error()
	}
	msg := &sarama.ProducerMessage{
		Topic: d.topic,
		Value: sarama.ByteEncoder(value),
		Headers: []sarama.RecordHeader{
			{Key: []byte(HeaderError), Value: []byte(reason)},
			{Key: []byte(HeaderNode), Value: []byte(d.node)},
			{Key: []byte(HeaderOrigin), Value: []byte(r.Origin.String())},
		},
	}
	if _, _, err := d.producer.SendMessage(msg); err != nil {
		return fmt.Errorf("node %s: record at %s failed (%s) and could not be dead-lettered to topic %q: %w: %w",
			d.node, r.Origin, reason, d.topic, ErrDelivery, err)
	}
	if d.counters != nil {
		d.counters.DeadLettered.Add(1)
	}
	return nil
}

func (d *deadLetter) close() error {
	var err error
	d.once.Do(func() {
		err = d.producer.Close()
		// A producer made from a client leaves the client open.
		if cerr := d.client.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
