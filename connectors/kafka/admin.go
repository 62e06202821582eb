package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// EnsureTopic creates topic with the given number of partitions (<= 0: the
// broker's default) and the broker's default replication factor, unless it
// exists already.
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int32) error {
	if topic == "" || len(brokers) == 0 {
		return fmt.Errorf("%w: ensure topic: brokers and topic are required", ErrConfig)
	}
	budget := connectTimeout
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl))
	}
	c := baseConfig("admin")
	c.Metadata.Full = true // the cluster admin refreshes metadata without topics
	client, _, err := connect(ctx, brokers, "", c, budget)
	if err != nil {
		return fmt.Errorf("ensure topic %q: %w", topic, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return fmt.Errorf("ensure topic %q on %s: %w", topic, strings.Join(brokers, ","), err)
	}
	defer admin.Close() // closes client too
	if partitions <= 0 {
		partitions = -1
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false)
	if err == nil || errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return nil
	}
	return fmt.Errorf("ensure topic %q on %s: %w", topic, strings.Join(brokers, ","), err)
}

// PartitionCount returns the number of partitions of an existing topic. The
// error wraps ErrTopicNotFound or ErrBrokersUnreachable.
func PartitionCount(brokers []string, topic string) (int32, error) {
	if topic == "" || len(brokers) == 0 {
		return 0, fmt.Errorf("%w: partition count: brokers and topic are required", ErrConfig)
	}
	c := baseConfig("admin")
	c.Metadata.AllowAutoTopicCreation = false
	client, parts, err := connect(context.Background(), brokers, topic, c, connectTimeout)
	if err != nil {
		return 0, err
	}
	client.Close()
	return int32(len(parts)), nil
}
