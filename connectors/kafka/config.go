package kafka

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// connectTimeout bounds how long connecting to the brokers (and finding the
// topic) is retried before giving up with a clear error.
const connectTimeout = 10 * time.Second

// topicWait is how long a missing topic is waited for (it may be being
// created) when the brokers do answer.
const topicWait = 2 * time.Second

// baseConfig is the sarama config shared by the source, sink and tools:
// short dial timeouts so an unreachable broker is reported quickly, and no
// full-cluster metadata fetches.
func baseConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = sanitizeClientID(clientID)
	c.Version = sarama.V2_8_0_0
	c.Net.DialTimeout = 3 * time.Second
	c.Net.ReadTimeout = 30 * time.Second
	c.Net.WriteTimeout = 30 * time.Second
	c.Metadata.Full = false
	c.Metadata.Retry.Max = 2
	c.Metadata.Retry.Backoff = 200 * time.Millisecond
	return c
}

// sanitizeClientID keeps the characters Kafka accepts in a client id.
func sanitizeClientID(s string) string {
	b := []byte("weir-" + s)
	for i, c := range b {
		ok := c == '.' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// connect creates a client, retrying until the brokers answer and (when
// topic is set) the topic's partitions are known, or the budget runs out.
// The returned error wraps ErrBrokersUnreachable or ErrTopicNotFound and
// names the brokers and topic.
func connect(ctx context.Context, brokers []string, topic string, cfg *sarama.Config, budget time.Duration) (sarama.Client, []int32, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := time.Now()
	var lastErr error
	for attempt := 0; ; attempt++ {
		client, parts, err := tryConnect(brokers, topic, cfg)
		if err == nil {
			return client, parts, nil
		}
		lastErr = err
		if isAuthError(err) {
			return nil, nil, authError(brokers, topic, cfg, err)
		}
		if !isUnknownTopic(err) {
			if refused := saslRefusal(brokers, cfg); refused != nil {
				return nil, nil, authError(brokers, topic, cfg, refused)
			}
		}
		if isUnknownTopic(err) && time.Since(start) >= min(topicWait, budget) {
			// The brokers answer; the topic is just not there.
			return nil, nil, connectError(brokers, topic, lastErr, budget)
		}
		select {
		case <-ctx.Done():
			return nil, nil, connectError(brokers, topic, lastErr, budget)
		case <-time.After(backoff(attempt)):
		}
	}
}

func tryConnect(brokers []string, topic string, cfg *sarama.Config) (sarama.Client, []int32, error) {
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, nil, err
	}
	if topic == "" {
		return client, nil, nil
	}
	if err := client.RefreshMetadata(topic); err != nil {
		client.Close()
		return nil, nil, err
	}
	parts, err := client.Partitions(topic)
	if err == nil && len(parts) == 0 {
		err = sarama.ErrUnknownTopicOrPartition
	}
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, parts, nil
}

func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 4)
	return min(d, time.Second)
}

func connectError(brokers []string, topic string, err error, budget time.Duration) error {
	list := strings.Join(brokers, ",")
	switch {
	case isUnknownTopic(err):
		return quietf(ErrTopicNotFound, nil, "topic %q does not exist on brokers %s (create it, e.g. with a broker that auto-creates topics or `kafka-topics --create`)", topic, list)
	case errors.Is(err, sarama.ErrOutOfBrokers), isNetError(err):
		return quietf(ErrBrokersUnreachable, nil, "no Kafka broker of %s answered within %s (topic %q): %v; is Kafka running there?", list, budget, topic, err)
	default:
		return quietf(ErrBrokersUnreachable, nil, "Kafka brokers %s unreachable (topic %q): %v", list, topic, err)
	}
}

func isNetError(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne)
}

func isUnknownTopic(err error) bool {
	return errors.Is(err, sarama.ErrUnknownTopicOrPartition) || errors.Is(err, sarama.ErrInvalidTopic)
}
