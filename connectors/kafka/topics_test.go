package kafka

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-stream/weir/dataflow/spec"
)

func sourceJob(brokers []string, topic string, mod func(*spec.KafkaSource)) *spec.Job {
	k := &spec.KafkaSource{Brokers: brokers, Topic: topic}
	if mod != nil {
		mod(k)
	}
	return &spec.Job{Name: "j", Pipeline: []spec.Node{
		{Name: "in", Source: &spec.Source{Kafka: k}},
		{Name: "out", Sink: &spec.Sink{Discard: &struct{}{}}},
	}}
}

// A missing source topic refuses the job with the topic, the brokers and
// the node's path, instead of a job that fails every restart on it.
func TestCheckSourceTopicsMissing(t *testing.T) {
	_, brokers := newCluster(t)
	ctx := testCtx(t, 30*time.Second)
	_, err := CheckSourceTopics(ctx, sourceJob(brokers, "nope", nil), map[string]int{"in": 2}, true)
	var errs spec.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("want one field error, got %v", err)
	}
	fe := errs[0]
	if fe.Path != "pipeline[0].source.kafka.topic" || !strings.Contains(fe.Msg, `topic "nope" does not exist on brokers `+brokers[0]) ||
		!strings.Contains(fe.Msg, "create_topic: true") {
		t.Fatalf("error %s: %s", fe.Path, fe.Msg)
	}
}

// create_topic: true creates the topic with the source's parallelism
// (or partitions:) as its partition count; a dry run creates nothing.
func TestCheckSourceTopicsCreate(t *testing.T) {
	c, brokers := newCluster(t)
	ctx := testCtx(t, 30*time.Second)
	create := func(k *spec.KafkaSource) { k.CreateTopic = true }
	if w, err := CheckSourceTopics(ctx, sourceJob(brokers, "dry", create), map[string]int{"in": 3}, false); err != nil || len(w) != 0 {
		t.Fatalf("dry run: %v %v", w, err)
	}
	if ti := c.TopicInfo("dry"); ti != nil {
		t.Fatalf("a dry run created the topic: %+v", ti)
	}
	if w, err := CheckSourceTopics(ctx, sourceJob(brokers, "made", create), map[string]int{"in": 3}, true); err != nil || len(w) != 0 {
		t.Fatalf("create: %v %v", w, err)
	}
	if n, err := PartitionCount(brokers, "made"); err != nil || n != 3 {
		t.Fatalf("topic made: %d partitions, %v; want 3", n, err)
	}
	five := func(k *spec.KafkaSource) { k.CreateTopic, k.Partitions = true, 5 }
	if _, err := CheckSourceTopics(ctx, sourceJob(brokers, "five", five), map[string]int{"in": 2}, true); err != nil {
		t.Fatal(err)
	}
	if n, err := PartitionCount(brokers, "five"); err != nil || n != 5 {
		t.Fatalf("topic five: %d partitions, %v; want 5", n, err)
	}
}

// More subtasks than partitions is allowed, with a warning that says how
// many subtasks idle.
func TestCheckSourceTopicsWarnsAboutIdleSubtasks(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(2, "two"))
	ctx := testCtx(t, 30*time.Second)
	w, err := CheckSourceTopics(ctx, sourceJob(brokers, "two", nil), map[string]int{"in": 5}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !strings.Contains(w[0], `source "in" runs 5 subtasks but topic "two" has 2 partitions: 3 subtasks will read nothing`) {
		t.Fatalf("warnings %q", w)
	}
	if w, err := CheckSourceTopics(ctx, sourceJob(brokers, "two", nil), map[string]int{"in": 2}, true); err != nil || len(w) != 0 {
		t.Fatalf("parallelism 2 on 2 partitions: %q %v", w, err)
	}
}

// Brokers that do not answer do not refuse the job (the source waits for
// them at run time), but the answer says the topic was not checked.
func TestCheckSourceTopicsBrokersDown(t *testing.T) {
	c, brokers := newCluster(t)
	c.Close()
	ctx := testCtx(t, 30*time.Second)
	w, err := CheckSourceTopics(ctx, sourceJob(brokers, "x", nil), map[string]int{"in": 1}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !strings.Contains(w[0], `pipeline[0].source.kafka.topic: topic "x" not checked`) {
		t.Fatalf("warnings %q", w)
	}
}

// The connect errors a user reads name the topic once and no package:
// "kafka: topic not found: topic \"x\" does not exist" said it twice.
func TestConnectErrorsSayItOnce(t *testing.T) {
	_, brokers := newCluster(t)
	_, err := PartitionCount(brokers, "nope")
	if !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("want ErrTopicNotFound, got %v", err)
	}
	if msg := err.Error(); strings.Contains(msg, "kafka: ") || strings.Count(msg, "nope") != 1 ||
		!strings.HasPrefix(msg, `topic "nope" does not exist on brokers `+brokers[0]) {
		t.Fatalf("message %q", msg)
	}
	_, err = PartitionCount([]string{"127.0.0.1:1"}, "t")
	if !errors.Is(err, ErrBrokersUnreachable) || strings.HasPrefix(err.Error(), "kafka: brokers unreachable") ||
		!strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}
}
