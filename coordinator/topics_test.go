package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-stream/weir/connectors/kafka"
	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
)

// A submission whose source topic is missing is refused with the topic's
// path (it would fail every restart); a source with more subtasks than
// partitions is accepted with a warning; a dry run of create_topic: true
// creates nothing, the submission creates the topic.
func TestSubmitChecksSourceTopics(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(2, "two"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	broker := kc.ListenAddrs()[0]
	co := startCoordinator(t, clock.NewManual(t0), func(c *coordinator.Config) { c.CheckTopics = kafka.CheckSourceTopics })
	cl := api.NewClient("http://" + co.HTTPAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	job := func(name, topic string, p int, extra string) []byte {
		return []byte(fmt.Sprintf("name: %s\nparallelism: %d\nrestart: {strategy: none}\npipeline:\n"+
			"  - name: in\n    source: {kafka: {brokers: [%q], topic: %s%s}}\n  - name: out\n    sink: {discard: {}}\n",
			name, p, broker, topic, extra))
	}

	_, err = cl.SubmitJob(ctx, job("missing", "nope", 1, ""))
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeInvalidSpec || len(apiErr.Details) != 1 ||
		apiErr.Details[0].Path != "pipeline[0].source.kafka.topic" ||
		!strings.Contains(apiErr.Details[0].Message, `topic "nope" does not exist on brokers `+broker) {
		t.Fatalf("submit on a missing topic: %v", err)
	}

	sub, err := cl.SubmitJob(ctx, job("wide", "two", 4, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Warnings) != 1 || !strings.Contains(sub.Warnings[0], `source "in" runs 4 subtasks but topic "two" has 2 partitions`) {
		t.Fatalf("warnings %q", sub.Warnings)
	}

	dr, err := cl.DryRun(ctx, job("made", "made", 3, ", create_topic: true"))
	if err != nil || len(dr.Warnings) != 0 {
		t.Fatalf("dry run: %+v %v", dr, err)
	}
	if kc.TopicInfo("made") != nil {
		t.Fatal("a dry run created the topic")
	}
	if _, err := cl.SubmitJob(ctx, job("made", "made", 3, ", create_topic: true")); err != nil {
		t.Fatal(err)
	}
	if n, err := kafka.PartitionCount([]string{broker}, "made"); err != nil || n != 3 {
		t.Fatalf("topic made: %d partitions, %v; want 3", n, err)
	}
}
