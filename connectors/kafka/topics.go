package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/dataflow/spec"
)

// topicCheckBudget bounds the check of one source's topic at submit.
const topicCheckBudget = 5 * time.Second

// CheckSourceTopics checks, before a job is accepted, that the topic of
// every Kafka source exists: a source started on a missing topic fails
// every restart on the same error until the restart budget is spent.
// A source with create_topic: true gets its topic created instead
// (partitions: its partitions, else the source's parallelism), unless
// create is false (a dry run). parallelism gives the subtasks of each
// source node by name; a source with more subtasks than its topic has
// partitions gets a warning, since the extra subtasks read nothing.
//
// Brokers that cannot be reached give a warning, not an error: the
// source waits for them at run time, and a broker down for maintenance
// must not block submissions. A missing topic is a spec.Errors whose
// path names the source's topic field.
func CheckSourceTopics(ctx context.Context, job *spec.Job, parallelism map[string]int, create bool) (warnings []string, err error) {
	if job == nil {
		return nil, nil
	}
	var errs spec.Errors
	for i := range job.Pipeline {
		n := &job.Pipeline[i]
		if n.Source == nil || n.Source.Kafka == nil {
			continue
		}
		k := n.Source.Kafka
		path := fmt.Sprintf("pipeline[%d].source.kafka.topic", i)
		p := parallelism[n.Name]
		parts, err := topicPartitions(ctx, k)
		switch {
		case errors.Is(err, ErrTopicNotFound) && k.CreateTopic && create:
			want := k.Partitions
			if want <= 0 {
				want = max(p, 1)
			}
			if err := createTopic(ctx, k, int32(want)); err != nil {
				errs = append(errs, &spec.FieldError{Path: path, Msg: fmt.Sprintf("create topic %q: %v", k.Topic, err)})
				continue
			}
			parts = want
		case errors.Is(err, ErrTopicNotFound) && k.CreateTopic:
			parts = k.Partitions
			if parts <= 0 {
				parts = max(p, 1)
			}
		case errors.Is(err, ErrTopicNotFound):
			errs = append(errs, &spec.FieldError{Path: path, Msg: fmt.Sprintf(
				"topic %q does not exist on brokers %s; create it, or set create_topic: true to create it at submit",
				k.Topic, strings.Join(k.Brokers, ","))})
			continue
		case errors.Is(err, ErrAuth):
			errs = append(errs, &spec.FieldError{Path: path, Msg: err.Error()})
			continue
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("%s: topic %q not checked: %v", path, k.Topic, err))
			continue
		}
		if p > parts {
			warnings = append(warnings, fmt.Sprintf(
				"source %q runs %d subtasks but topic %q has %d partitions: %d subtasks will read nothing (lower the parallelism or add partitions)",
				n.Name, p, k.Topic, parts, p-parts))
		}
	}
	return warnings, errs.Err()
}

// topicPartitions returns the partition count of the source's topic, or an
// error wrapping ErrTopicNotFound, ErrAuth or ErrBrokersUnreachable.
func topicPartitions(ctx context.Context, k *spec.KafkaSource) (int, error) {
	sec, err := resolvedSecurity(k.TLS, k.SASL, "coordinator")
	if err != nil {
		return 0, err
	}
	client, err := checkClient(ctx, k, sec, false)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	if err := client.RefreshMetadata(k.Topic); err != nil {
		if isUnknownTopic(err) {
			return 0, fmt.Errorf("%w: %q on brokers %s", ErrTopicNotFound, k.Topic, strings.Join(k.Brokers, ","))
		}
		return 0, fmt.Errorf("%w: brokers %s: %v", ErrBrokersUnreachable, strings.Join(k.Brokers, ","), err)
	}
	ps, err := client.Partitions(k.Topic)
	if isUnknownTopic(err) || err == nil && len(ps) == 0 {
		return 0, fmt.Errorf("%w: %q on brokers %s", ErrTopicNotFound, k.Topic, strings.Join(k.Brokers, ","))
	}
	if err != nil {
		return 0, fmt.Errorf("%w: brokers %s: %v", ErrBrokersUnreachable, strings.Join(k.Brokers, ","), err)
	}
	return len(ps), nil
}

func checkClient(ctx context.Context, k *spec.KafkaSource, sec *Security, full bool) (sarama.Client, error) {
	budget := topicCheckBudget
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl))
	}
	c := baseConfig("check")
	sec.Apply(c)
	c.Metadata.AllowAutoTopicCreation = false
	c.Metadata.Full = full // the cluster admin refreshes metadata without topics
	client, _, err := connect(ctx, k.Brokers, "", c, budget)
	return client, err
}

// createTopic creates the source's topic (the brokers' default
// replication) and waits until its partitions are in the metadata, so a
// source deployed right after the submission finds them.
func createTopic(ctx context.Context, k *spec.KafkaSource, partitions int32) error {
	sec, err := resolvedSecurity(k.TLS, k.SASL, "coordinator")
	if err != nil {
		return err
	}
	client, err := checkClient(ctx, k, sec, true)
	if err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return err
	}
	defer admin.Close() // closes client too
	err = admin.CreateTopic(k.Topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("on brokers %s with %d partitions: %w", strings.Join(k.Brokers, ","), partitions, err)
	}
	for attempt := 0; ; attempt++ {
		if err := client.RefreshMetadata(k.Topic); err == nil {
			if ps, err := client.Partitions(k.Topic); err == nil && len(ps) > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("created on brokers %s, but its partitions did not appear in the metadata: %w", strings.Join(k.Brokers, ","), ctx.Err())
		case <-time.After(backoff(attempt)):
		}
	}
}
