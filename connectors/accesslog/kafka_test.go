package accesslog

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

func newBroker(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// readRaw returns every value of every partition of topic, by partition.
func readRaw(t *testing.T, brokers []string, topic string) map[int32][][]byte {
	t.Helper()
	sc := saramaConfig()
	c, err := sarama.NewConsumer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := sarama.NewClient(brokers, sc)
	defer cl.Close()
	out := map[int32][][]byte{}
	for _, p := range parts {
		end, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			out[p] = append(out[p], m.Value)
			if m.Offset == end-1 {
				break
			}
		}
		pc.Close()
	}
	return out
}

func TestProduceThenReadOutputs(t *testing.T) {
	brokers := newBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cfg := Config{Seed: 4, Events: 3000, Partitions: 3}
	var last int64
	if err := Produce(ctx, brokers, "access", cfg, 0, func(n int64) { last = n }); err != nil {
		t.Fatal(err)
	}
	if last != cfg.Events {
		t.Fatalf("progress ended at %d, want %d", last, cfg.Events)
	}
	// Every partition holds exactly its events, in generated order.
	want := map[int32][]string{}
	_ = Generate(cfg, func(i int64, p int32, e Event) error {
		want[p] = append(want[p], string(e.AppendJSON(nil)))
		return nil
	})
	got := readRaw(t, brokers, "access")
	for p := int32(0); p < 3; p++ {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("partition %d: %d events, want %d", p, len(got[p]), len(want[p]))
		}
		for i := range got[p] {
			if string(got[p][i]) != want[p][i] {
				t.Fatalf("partition %d offset %d: %s, want %s", p, i, got[p][i], want[p][i])
			}
		}
	}
	// Producing again into a topic with too few partitions is refused.
	if err := Produce(ctx, brokers, "access", Config{Seed: 1, Events: 1, Partitions: 5}, 0, nil); err == nil {
		t.Fatal("produced into a topic with too few partitions")
	}

	// Write the model's windows to an output topic in a committed
	// transaction, plus an aborted transaction and a malformed record.
	m := Expected(cfg, time.Minute, 5*time.Second)
	m.SetFinalWatermark(1 << 62)
	sc := saramaConfig()
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Transaction.ID = "test-txn"
	sc.Producer.Return.Successes = true
	sc.Metadata.AllowAutoTopicCreation = true
	admin, err := sarama.NewClusterAdmin(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("windows", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	pr, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	send := func(v string) {
		t.Helper()
		if _, _, err := pr.SendMessage(&sarama.ProducerMessage{Topic: "windows", Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	encode := func(r OutputRecord) string {
		return `{"ip":"` + r.IP + `","window_start":` + itoa(r.WindowStart) + `,"window_end":` + itoa(r.WindowEnd) +
			`,"count":` + itoa(r.Count) + `,"bytes":` + itoa(r.Bytes) + `}`
	}
	windows := m.Records(false)
	if err := pr.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for _, r := range windows {
		send(encode(r))
	}
	send(`{"ip":"1.2.3.4","count":"three"}`)
	if err := pr.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	if err := pr.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	send(encode(windows[0])) // aborted: must not be read
	if err := pr.AbortTxn(); err != nil {
		t.Fatal(err)
	}

	// The idle time is the whole budget for the first message too: at
	// 500ms a loaded machine (CI beside another make test) read nothing.
	outs, bad, err := ReadOutputs(ctx, brokers, "windows", 5*time.Second)
	if err != nil || len(bad) != 1 || !strings.Contains(bad[0].String(), `field "window_start" or "start" missing`) {
		t.Fatalf("ReadOutputs: %v, malformed %v; want one malformed record", err, bad)
	}
	res := m.Verify(outs)
	if !res.OK() || res.Matched != len(windows) {
		t.Fatalf("round trip: %v %v", res, res.Examples)
	}
	res.AddMalformed(bad)
	if res.OK() || res.Wrong != 1 {
		t.Fatalf("malformed record not counted: %v", res)
	}

	if _, _, err := ReadOutputs(ctx, brokers, "no-such-topic", 100*time.Millisecond); err == nil {
		t.Fatal("read a missing topic")
	}
}

func TestProduceUnboundedUntilCancelled(t *testing.T) {
	brokers := newBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- Produce(ctx, brokers, "live", Config{Seed: 1, Partitions: 2}, 2000, func(k int64) { n.Store(k) })
	}()
	deadline := time.Now().Add(30 * time.Second)
	for n.Load() < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d events produced in 30 s", n.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Produce did not stop on cancel")
	}
	// The limiter may be slower than 2000/s on a busy machine, never
	// faster: at most the rate over the elapsed time plus one second's
	// burst.
	if got, most := n.Load(), int64(2000*time.Since(start).Seconds())+2000; got > most {
		t.Fatalf("produced %d events, more than %d at 2000/s", got, most)
	}
	if err := Produce(context.Background(), brokers, "live", Config{}, 0, nil); err == nil {
		t.Fatal("unbounded log without a rate accepted")
	}
}

func TestDecodeOutput(t *testing.T) {
	r, err := DecodeOutput([]byte(`{"ip":"a","start":"2026-01-01T00:00:00Z","end":1767225660000,"count":2,"sum_bytes":3.0}`))
	if err != nil || r != (OutputRecord{IP: "a", WindowStart: DefaultStart, WindowEnd: DefaultStart + 60000, Count: 2, Bytes: 3}) {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{`[]`, `{"ip":1}`, `{"ip":"a","window_start":1,"window_end":2,"count":1.5,"bytes":1}`,
		`{"ip":"a","window_start":1,"window_end":2,"count":1}`, `not json`} {
		if _, err := DecodeOutput([]byte(bad)); err == nil {
			t.Errorf("decoded %s", bad)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func FuzzDecodeOutput(f *testing.F) {
	f.Add([]byte(`{"ip":"a","window_start":1,"window_end":2,"count":1,"bytes":1}`))
	f.Add([]byte(`{"ip":"a","start":"2026-01-01T00:00:00Z","end":1e3,"count":1,"sum_bytes":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeOutput(b)
	})
}

// TestConsumeErrorNamesDamagedData: an answer from the broker that does not
// decode (sarama's "invalid array length", which weir verify printed bare
// against a damaged dev broker) says that the broker's data is at fault.
func TestConsumeErrorNamesDamagedData(t *testing.T) {
	cerr := &sarama.ConsumerError{Topic: "out", Partition: 2, Err: sarama.PacketDecodingError{Info: "invalid array length"}}
	got := consumeError("out", 2, cerr).Error()
	for _, want := range []string{"out partition 2", "does not decode", "damaged", "invalid array length"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
	if got := consumeError("out", 1, sarama.ErrOutOfBrokers).Error(); strings.Contains(got, "damaged") {
		t.Errorf("a connection error blamed on damaged data: %q", got)
	}
}
