package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

func sinkNode(brokers []string, topic string, mod func(*spec.KafkaSink)) *spec.Node {
	k := &spec.KafkaSink{Brokers: brokers, Topic: topic}
	if mod != nil {
		mod(k)
	}
	return &spec.Node{Name: "out", Sink: &spec.Sink{Kafka: k}}
}

func openSink(t *testing.T, node *spec.Node, dctx *dataflow.Context) *Sink {
	t.Helper()
	s, err := NewSink(node, dctx)
	if err != nil {
		t.Fatal(err)
	}
	s.connectBudget = 2 * time.Second
	if err := s.Open(dctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(nil) })
	return s
}

// failProduce makes every produce request fail with a non-retriable error.
func failProduce(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.ProduceRequest)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

func TestSinkWritesKeyedJSONAndFlushWaitsForAcks(t *testing.T) {
	c, brokers := newCluster(t, kfake.SeedTopics(3, "out"))
	// Slow acks down so Flush has something to wait for.
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(20 * time.Millisecond)
		return nil, nil, false
	})
	s := openSink(t, sinkNode(brokers, "out", func(k *spec.KafkaSink) { k.Key = "user" }), nil)
	const n = 500
	for i := range n {
		r := &dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"user": fmt.Sprintf("u%d", i%7), "n": int64(i), "tag": "<b>&", "f": 1.5})}
		if err := s.Process(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(testCtx(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := s.acks.count(); got != n {
		t.Fatalf("Flush returned with %d of %d messages acknowledged", got, n)
	}
	recs := consumeAll(t, brokers, "out", n)
	partOf := map[string]int32{}
	for _, r := range recs {
		var i int
		var user string
		if _, err := fmt.Sscanf(string(r.Value), `{"f":1.5,"n":%d,"tag":"<b>&","user":"%s`, &i, &user); err != nil {
			t.Fatalf("value %s: %v", r.Value, err)
		}
		want := fmt.Sprintf(`{"f":1.5,"n":%d,"tag":"<b>&","user":"u%d"}`, i, i%7)
		if string(r.Value) != want || string(r.Key) != fmt.Sprintf("u%d", i%7) {
			t.Fatalf("message %q key %q, want %q key u%d", r.Value, r.Key, want, i%7)
		}
		if p, ok := partOf[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		partOf[string(r.Key)] = r.Partition
	}
	if err := s.Close(nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(nil); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSinkRawAndEncodingErrors(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "raw", "js"))
	counters := &dataflow.Counters{}
	skip := &dataflow.Context{OnError: dataflow.SkipOnError{Counters: counters}}
	raw := openSink(t, sinkNode(brokers, "raw", func(k *spec.KafkaSink) { k.Format = "raw" }), skip)
	for _, f := range []map[string]any{{"value": "line 1"}, {"value": int64(5)}, {"value": "line 2"}} {
		if err := raw.Process(&dataflow.Record{Fields: dataflow.FieldsOf(f)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	js := openSink(t, sinkNode(brokers, "js", nil), &dataflow.Context{})
	err := js.Process(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"x": math.NaN()}), Origin: dataflow.Origin{Topic: "in", Offset: 4}}, nil)
	var re *dataflow.RecordError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "offset 4") {
		t.Fatalf("NaN under the fail policy: %v", err)
	}
	if err := raw.Close(nil); err != nil {
		t.Fatal(err)
	}
	recs := consumeAll(t, brokers, "raw", 2)
	if string(recs[0].Value) != "line 1" || string(recs[1].Value) != "line 2" || counters.SkippedInvalid.Load() != 1 {
		t.Fatalf("raw wrote %q %q, skipped %d", recs[0].Value, recs[1].Value, counters.SkippedInvalid.Load())
	}
}

func TestKeyString(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"a", "a"}, {int64(-3), "-3"}, {2.0, "2"}, {2.5, "2.5"}, {true, "true"},
		{[]any{"a", int64(1)}, `["a",1]`}, {map[string]any{"b": 1, "a": 2}, `{"a":2,"b":1}`},
	} {
		if got, err := keyString(tc.in); err != nil || got != tc.want {
			t.Errorf("keyString(%v) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSinkDeliveryFailureFailsTheTask(t *testing.T) {
	c, brokers := newCluster(t, kfake.SeedTopics(1, "denied"))
	s := openSink(t, sinkNode(brokers, "denied", nil), nil)
	failProduce(c)
	if err := s.Process(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"a": int64(1)})}, nil); err != nil {
		t.Fatal(err)
	}
	err := s.Flush(testCtx(t, 20*time.Second))
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), `topic "denied"`) {
		t.Fatalf("Flush: want a delivery error naming the topic, got %v", err)
	}
	if err2 := s.Process(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"a": int64(2)})}, nil); !errors.Is(err2, ErrDelivery) {
		t.Fatalf("Process after a failed delivery: %v", err2)
	}
	if err := s.Close(nil); !errors.Is(err, ErrDelivery) {
		t.Fatalf("Close after a failed delivery: %v", err)
	}
}

func TestSinkBrokerUnreachable(t *testing.T) {
	t.Parallel() // mostly waiting on timeouts
	s, err := NewSink(sinkNode([]string{"127.0.0.1:1"}, "out", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.connectBudget = time.Second
	err = s.Open(nil)
	if !errors.Is(err, ErrBrokersUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("want an unreachable error, got %v", err)
	}
	if err := s.Close(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSink(sinkNode(nil, "", func(k *spec.KafkaSink) { k.Delivery = "exactly-once" }), nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("want ErrConfig, got %v", err)
	}
}

func TestDeadLetterFailureIsATaskFailure(t *testing.T) {
	c, brokers := newCluster(t, kfake.SeedTopics(1, "dlq"))
	counters := &dataflow.Counters{}
	h, closer, err := NewDeadLetter("n", &spec.ErrorPolicy{Action: spec.OnErrorDeadLetter, Topic: "dlq", Brokers: brokers}, counters)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	rec := &dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"a": int64(1)}), Origin: dataflow.Origin{Topic: "in", Partition: 2, Offset: 9}}
	if err := h.Handle(rec, nil, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, brokers, "dlq", 1)
	if string(got[0].Value) != `{"a":1}` || headers(got[0])[HeaderOrigin] != "topic in partition 2 offset 9" {
		t.Fatalf("dead letter %q %v", got[0].Value, headers(got[0]))
	}
	failProduce(c)
	err = h.Handle(rec, []byte("x"), errors.New("boom"))
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "offset 9") || !strings.Contains(err.Error(), `"dlq"`) {
		t.Fatalf("want a delivery failure naming the record and topic, got %v", err)
	}
	if counters.DeadLettered.Load() != 1 {
		t.Fatalf("dead-lettered %d, want 1", counters.DeadLettered.Load())
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closer.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := NewDeadLetter("n", &spec.ErrorPolicy{Action: spec.OnErrorDeadLetter}, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("want ErrConfig, got %v", err)
	}
}

func TestEnsureTopicAndPartitionCount(t *testing.T) {
	t.Parallel() // mostly waiting on timeouts
	_, brokers := newCluster(t)
	ctx := testCtx(t, 20*time.Second)
	if _, err := PartitionCount(brokers, "made"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("want ErrTopicNotFound, got %v", err)
	}
	for range 2 { // the second call finds it existing
		if err := EnsureTopic(ctx, brokers, "made", 6); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := PartitionCount(brokers, "made"); err != nil || n != 6 {
		t.Fatalf("partitions %d, %v; want 6", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := EnsureTopic(ctx, []string{"127.0.0.1:1"}, "x", 1); !errors.Is(err, ErrBrokersUnreachable) {
		t.Fatalf("want ErrBrokersUnreachable, got %v", err)
	}
}

func TestSinkThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const total = 50_000
	_, brokers := newCluster(t, kfake.SeedTopics(4, "bulk"))
	s := openSink(t, sinkNode(brokers, "bulk", func(k *spec.KafkaSink) { k.Key = "user" }), nil)
	fields := map[string]any{"user": "u-1234", "path": "/index.html", "status": int64(200), "bytes": int64(5120), "ts": int64(1700000000000)}
	start := time.Now()
	for range total {
		if err := s.Process(&dataflow.Record{Fields: dataflow.FieldsOf(fields)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(testCtx(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("wrote and acknowledged %d keyed JSON records in %s: %.0f records/s (race detector on: %v)", total, el.Round(time.Millisecond), float64(total)/el.Seconds(), raceEnabled)
}
