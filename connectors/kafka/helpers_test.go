package kafka

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// newCluster starts an in-process Kafka-protocol broker on a free port.
func newCluster(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(0)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newProducer(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes values to one partition and waits for the acks.
func produce(t testing.TB, cl *kgo.Client, topic string, partition int32, values ...string) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func kafkaNode(name string, brokers []string, topic string, mod func(*spec.KafkaSource)) *spec.Node {
	k := &spec.KafkaSource{Brokers: brokers, Topic: topic}
	if mod != nil {
		mod(k)
	}
	return &spec.Node{Name: name, Source: &spec.Source{Kafka: k}}
}

// testOutput records what a source emits. Safe to read from the test
// goroutine while Run writes.
type testOutput struct {
	mu         sync.Mutex
	records    []dataflow.Record
	watermarks []int64
	idle       []bool
	count      int
	keep       bool // keep records (else only count)
}

func newTestOutput() *testOutput { return &testOutput{keep: true} }

func (o *testOutput) Emit(r *dataflow.Record) error {
	o.mu.Lock()
	o.count++
	if o.keep {
		o.records = append(o.records, *r)
	}
	o.mu.Unlock()
	return nil
}

func (o *testOutput) EmitSide(string, *dataflow.Record) error { return nil }

func (o *testOutput) EmitWatermark(wm int64) error {
	o.mu.Lock()
	o.watermarks = append(o.watermarks, wm)
	o.mu.Unlock()
	return nil
}

func (o *testOutput) MarkIdle(idle bool) error {
	o.mu.Lock()
	o.idle = append(o.idle, idle)
	o.mu.Unlock()
	return nil
}

func (o *testOutput) n() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count
}

func (o *testOutput) lastWatermark() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.watermarks) == 0 {
		return -1 << 63
	}
	return o.watermarks[len(o.watermarks)-1]
}

func (o *testOutput) idleState() (idle, known bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.idle) == 0 {
		return false, false
	}
	return o.idle[len(o.idle)-1], true
}

func (o *testOutput) snapshot() []dataflow.Record {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]dataflow.Record(nil), o.records...)
}

// fakeClock is a settable clock for watermark idleness.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startSource builds, opens and runs a source in the background. The
// returned channel yields Run's result.
func startSource(t testing.TB, ctx context.Context, node *spec.Node, dctx *dataflow.Context, out dataflow.SourceOutput, prep func(*Source)) (*Source, <-chan error) {
	t.Helper()
	if dctx == nil {
		dctx = &dataflow.Context{}
	}
	if dctx.Logger == nil {
		dctx.Logger = slog.New(slog.DiscardHandler)
	}
	src, err := NewSource(node, dctx)
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*Source)
	s.connectBudget = 2 * time.Second
	if prep != nil {
		prep(s)
	}
	if err := s.Open(dctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	return s, done
}

func wait(t testing.TB, done <-chan error, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %s", timeout)
		return nil
	}
}
