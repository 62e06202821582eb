package kafka

import (
	"errors"
	"fmt"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/internal/twophase"
)

// Sentinel errors; match them with errors.Is. Each is wrapped with the node,
// topic and brokers involved.
var (
	// ErrBrokersUnreachable: no broker of the configured list answered.
	// Retryable: the job's restart strategy may succeed once Kafka is up.
	ErrBrokersUnreachable = errors.New("kafka: brokers unreachable")
	// ErrTopicNotFound: the brokers answered but do not have the topic.
	ErrTopicNotFound = errors.New("kafka: topic not found")
	// ErrDelivery: the broker did not acknowledge a produced message.
	ErrDelivery = errors.New("kafka: delivery failed")
	// ErrConfig: the node's Kafka settings are invalid. Not retryable.
	ErrConfig = errors.New("kafka: invalid config")
	// ErrTxnFenced: a transaction could not be committed because the broker
	// no longer has it open under the recorded producer epoch: it was
	// aborted after transaction_timeout, or its id was taken over. The
	// records of that transaction are lost; never treated as success.
	ErrTxnFenced = fmt.Errorf("kafka: transaction fenced (%w)", dataflow.ErrUnrecoverable)
	// ErrTxnUnknownOutcome: a commit got no answer before the retries or
	// the deadline ran out; whether it committed is unknown. It wraps
	// twophase.ErrOutcomeUnknown: the sink commits again (a repeated
	// commit of a committed transaction succeeds) until an answer comes.
	ErrTxnUnknownOutcome = fmt.Errorf("kafka: transaction outcome unknown (%w)", twophase.ErrOutcomeUnknown)
	// ErrBadSinkState: an exactly-once sink's snapshot could not be decoded
	// or is inconsistent. Not retryable with the same checkpoint.
	ErrBadSinkState = errors.New("kafka: bad sink state")
)
