package kafka

import "errors"

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
)
