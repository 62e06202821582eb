package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
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
	sec, err := newSecurity(policy.TLS, policy.SASL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: node %s: on_error dead_letter: %s", ErrConfig, node, err)
	}
	c := baseConfig(node + "-dlq")
	sec.Apply(c)
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

// Handle writes the failed record with the reason in headers, and returns
// an error, failing the task, when the write is not acknowledged.
//
// What it writes (docs/spec.md, "Error policies"):
//   - a record read by a Kafka source (r.Raw, kept through per-record
//     operators): the message's key, value and headers exactly as read, a
//     null key or value staying null;
//   - else raw, when given: that value, without a key;
//   - else the record's fields as a JSON object (a value JSON cannot carry,
//     such as NaN or an infinity, as a string like "+Inf"), keyed by the
//     record's key when it has one.
//
// The headers weir.error, weir.node and weir.origin follow any original
// headers.
func (d *deadLetter) Handle(r *dataflow.Record, raw []byte, cause error) error {
	if r == nil {
		r = &dataflow.Record{}
	}
	reason := "unknown error"
	if cause != nil {
		reason = cause.Error()
	}
	msg := deadLetterMessage(d.topic, r, raw)
	msg.Headers = append(msg.Headers,
		sarama.RecordHeader{Key: []byte(HeaderError), Value: []byte(reason)},
		sarama.RecordHeader{Key: []byte(HeaderNode), Value: []byte(d.node)},
		sarama.RecordHeader{Key: []byte(HeaderOrigin), Value: []byte(r.Origin.String())},
	)
	if _, _, err := d.producer.SendMessage(msg); err != nil {
		return fmt.Errorf("node %s: record at %s failed (%s) and could not be dead-lettered to topic %q: %w: %w",
			d.node, r.Origin, reason, d.topic, ErrDelivery, err)
	}
	if d.counters != nil {
		d.counters.DeadLettered.Add(1)
	}
	return nil
}

// deadLetterMessage is the dead letter of r without weir's headers (see
// Handle). A nil Key or Value encoder is what sarama writes as null.
func deadLetterMessage(topic string, r *dataflow.Record, raw []byte) *sarama.ProducerMessage {
	msg := &sarama.ProducerMessage{Topic: topic}
	if m, ok := r.Raw.(*sarama.ConsumerMessage); ok && m != nil {
		if m.Key != nil {
			msg.Key = sarama.ByteEncoder(m.Key)
		}
		if m.Value != nil {
			msg.Value = sarama.ByteEncoder(m.Value)
		}
		msg.Headers = make([]sarama.RecordHeader, 0, len(m.Headers)+3)
		for _, h := range m.Headers {
			if h != nil {
				msg.Headers = append(msg.Headers, *h)
			}
		}
		return msg
	}
	if raw != nil {
		msg.Value = sarama.ByteEncoder(raw)
		return msg
	}
	msg.Value = sarama.ByteEncoder(fieldsJSON(r.Fields))
	if k := keyBytes(r.Key); k != nil {
		msg.Key = sarama.ByteEncoder(k)
	}
	return msg
}

// fieldsJSON encodes f as a JSON object, always valid JSON: a value JSON
// cannot carry becomes a string (NaN and infinities as strconv writes them,
// "NaN", "+Inf", "-Inf"; another type as fmt prints it).
func fieldsJSON(f dataflow.Fields) []byte {
	if b, err := dataflow.AppendJSON(nil, f); err == nil {
		return b
	}
	vals := make([]any, f.Len())
	for i := range vals {
		vals[i] = jsonSafe(f.Value(i))
	}
	if b, err := dataflow.AppendJSON(nil, dataflow.NewFields(f.Shape(), vals)); err == nil {
		return b
	}
	// Unreachable with jsonSafe's values; still never invalid JSON.
	b, _ := json.Marshal(map[string]string{"unencodable": f.String()})
	return b
}

// jsonSafe replaces what JSON cannot carry in v by strings.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, string, time.Time, []byte:
		return v
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return v
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	}
	if _, err := json.Marshal(v); err == nil {
		return v
	}
	return fmt.Sprint(v)
}

// keyBytes renders a record's key (set by key_by) as a message key, as
// the sink does for strings and integers; nil for no key.
func keyBytes(k any) []byte {
	switch x := k.(type) {
	case nil:
		return nil
	case string:
		return []byte(x)
	case []byte:
		return x
	case int64:
		return strconv.AppendInt(nil, x, 10)
	}
	if b, err := json.Marshal(jsonSafe(k)); err == nil {
		return b
	}
	return []byte(fmt.Sprint(k))
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
