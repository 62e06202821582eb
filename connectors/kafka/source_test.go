package kafka

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

func TestSourceReadsEveryPartitionOnceAcrossSubtasks(t *testing.T) {
	const parts, perPart, n = 7, 30, 3
	_, brokers := newCluster(t, kfake.SeedTopics(parts, "events"))
	cl := newProducer(t, brokers)
	for p := int32(0); p < parts; p++ {
		var vals []string
		for i := range perPart {
			vals = append(vals, jsonOf(t, map[string]any{"p": p, "i": i}))
		}
		produce(t, cl, "events", p, vals...)
	}

	ctx := testCtx(t, 30*time.Second)
	seen := map[string]int{}
	for sub := range n {
		out := newTestOutput()
		node := kafkaNode("src", brokers, "events", func(k *spec.KafkaSource) { k.Bounded = true })
		dctx := &dataflow.Context{Node: "src", Subtask: sub, Parallelism: n}
		s, done := startSource(t, ctx, node, dctx, out, nil)
		if err := wait(t, done, 20*time.Second); err != nil {
			t.Fatalf("subtask %d: %v", sub, err)
		}
		wantOffsets := map[int32]int64{}
		for p := int32(0); p < parts; p++ {
			if int(p)%n == sub {
				wantOffsets[p] = perPart
			}
		}
		if got := s.Offsets(); !reflect.DeepEqual(got, wantOffsets) {
			t.Errorf("subtask %d: offsets %v, want %v", sub, got, wantOffsets)
		}
		for _, r := range out.snapshot() {
			p := r.Fields.Get("p").(int64)
			if int(p)%n != sub || int32(p) != r.Origin.Partition {
				t.Errorf("subtask %d got a record of partition %d (origin %v)", sub, p, r.Origin)
			}
			if r.Origin.Source != "src" || r.Origin.Topic != "events" || r.Origin.Offset != r.Fields.Get("i").(int64) {
				t.Errorf("bad origin %+v for %v", r.Origin, r.Fields)
			}
			if r.Time != dataflow.NoTime {
				t.Errorf("record without event time config has time %d", r.Time)
			}
			seen[fmt.Sprint(p, "/", r.Fields.Get("i"))]++
		}
	}
	if len(seen) != parts*perPart {
		t.Fatalf("read %d distinct records, want %d", len(seen), parts*perPart)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("record %s read %d times", k, c)
		}
	}
}

func TestSourceWithoutPartitionsIsIdle(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(2, "few"))
	ctx, cancel := context.WithCancel(testCtx(t, 20*time.Second))
	out := newTestOutput()
	_, done := startSource(t, ctx, kafkaNode("src", brokers, "few", nil),
		&dataflow.Context{Subtask: 2, Parallelism: 3}, out, nil)
	eventually(t, 10*time.Second, "idle mark", func() bool { idle, ok := out.idleState(); return ok && idle })
	cancel()
	if err := wait(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// Bounded: nothing to read, ends at once.
	_, done = startSource(t, testCtx(t, 20*time.Second), kafkaNode("src", brokers, "few", func(k *spec.KafkaSource) { k.Bounded = true }),
		&dataflow.Context{Subtask: 2, Parallelism: 3}, newTestOutput(), nil)
	if err := wait(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestSourceStartOffsetsAndLatest(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "t"))
	cl := newProducer(t, brokers)
	var vals []string
	for i := range 10 {
		vals = append(vals, jsonOf(t, map[string]any{"i": i}))
	}
	produce(t, cl, "t", 0, vals...)

	// Explicit start offsets win over start_from.
	out := newTestOutput()
	s, done := startSource(t, testCtx(t, 20*time.Second), kafkaNode("src", brokers, "t", func(k *spec.KafkaSource) { k.Bounded = true }),
		nil, out, func(s *Source) { s.SetStartOffsets(map[int32]int64{0: 7}) })
	if err := wait(t, done, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range out.snapshot() {
		got = append(got, r.Fields.Get("i").(int64))
	}
	if !reflect.DeepEqual(got, []int64{7, 8, 9}) {
		t.Fatalf("from offset 7 read %v", got)
	}
	if off := s.Offsets(); off[0] != 10 {
		t.Fatalf("offsets %v, want next offset 10", off)
	}

	// An offset before the log start or past the end is refused clearly.
	_, done = startSource(t, testCtx(t, 20*time.Second), kafkaNode("src", brokers, "t", nil),
		nil, newTestOutput(), func(s *Source) { s.SetStartOffsets(map[int32]int64{0: 11}) })
	if err := wait(t, done, 15*time.Second); err == nil || !strings.Contains(err.Error(), "beyond the end") {
		t.Fatalf("want a beyond-the-end error, got %v", err)
	}

	// latest: only records produced after the start.
	ctx, cancel := context.WithCancel(testCtx(t, 20*time.Second))
	out = newTestOutput()
	s, done = startSource(t, ctx, kafkaNode("src", brokers, "t", func(k *spec.KafkaSource) { k.StartFrom = "latest" }), nil, out, nil)
	// Offsets are resolved before reading; wait for a position to exist by
	// producing until something arrives.
	eventually(t, 10*time.Second, "a record produced after start", func() bool {
		produce(t, cl, "t", 0, `{"i":100}`)
		return out.n() > 0
	})
	cancel()
	if err := wait(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, r := range out.snapshot() {
		if r.Fields.Get("i").(int64) != 100 {
			t.Fatalf("start_from latest read an old record %v", r.Fields)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]any
		wantErr string
	}{
		{in: `{"a":1,"b":1.5,"c":-9007199254740993,"d":1e3,"e":"x","f":true,"g":null}`,
			want: map[string]any{"a": int64(1), "b": 1.5, "c": int64(-9007199254740993), "d": 1000.0, "e": "x", "f": true, "g": nil}},
		{in: `{"n":{"x":[1,2.5,{"y":3}]}}`,
			want: map[string]any{"n": map[string]any{"x": []any{int64(1), 2.5, map[string]any{"y": int64(3)}}}}},
		{in: `{"big":123456789012345678901234567890}`, want: map[string]any{"big": 1.2345678901234568e29}},
		{in: `  {"a":1}  `, want: map[string]any{"a": int64(1)}},
		{in: `[1,2]`, wantErr: "want a JSON object, got an array"},
		{in: `"s"`, wantErr: "want a JSON object, got a string"},
		{in: `{"a":`, wantErr: "invalid JSON"},
		{in: `{"a":1} {"b":2}`, wantErr: "data after the object"},
		{in: ``, wantErr: "empty message"},
	}
	var d decoder
	for _, tc := range tests {
		got, err := d.decode([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got.Map(), tc.want) {
			t.Errorf("%q: got %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	raw := decoder{raw: true}
	if got, _ := raw.decode([]byte("not json")); !reflect.DeepEqual(got.Map(), map[string]any{"value": "not json"}) {
		t.Errorf("raw: %v", got)
	}
}

var fuzzSchema, _ = dataflow.NewSchema(map[string]string{"n": "float", "s": "string"})

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1.5,{"c":null}]}`))
	f.Add([]byte(`{"n":1,"s":"x"}`))
	f.Add([]byte(`{"n":"1","s":2}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoder
		m, err := d.decode(b)
		if err == nil && m.IsZero() {
			t.Fatal("nil map without error")
		}
		// With a schema: what passes has the declared types.
		d.schema = fuzzSchema
		m, err = d.decode(b)
		if err == nil {
			if _, ok := m.Get("n").(float64); !ok {
				t.Fatalf("schema passed n = %#v", m.Get("n"))
			}
			if _, ok := m.Get("s").(string); !ok {
				t.Fatalf("schema passed s = %#v", m.Get("s"))
			}
		}
	})
}

func TestSourceBadRecordPolicies(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "in", "dlq"))
	cl := newProducer(t, brokers)
	produce(t, cl, "in", 0, `{"ts":1}`, `not json`, `{"ts":3}`, `{"ts":"late"}`, `{"ts":5}`)
	node := func() *spec.Node {
		n := kafkaNode("src", brokers, "in", func(k *spec.KafkaSource) { k.Bounded = true })
		n.Source.EventTime = &spec.EventTime{Field: "ts"}
		return n
	}

	t.Run("fail", func(t *testing.T) {
		out := newTestOutput()
		_, done := startSource(t, testCtx(t, 20*time.Second), node(), &dataflow.Context{Node: "src"}, out, nil)
		err := wait(t, done, 15*time.Second)
		var re *dataflow.RecordError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "topic in partition 0 offset 1") || !strings.Contains(err.Error(), "invalid JSON") {
			t.Fatalf("want a record error naming topic/partition/offset, got %v", err)
		}
		if out.n() != 1 {
			t.Fatalf("emitted %d records before the failure, want 1", out.n())
		}
	})

	t.Run("skip", func(t *testing.T) {
		counters := &dataflow.Counters{}
		out := newTestOutput()
		_, done := startSource(t, testCtx(t, 20*time.Second), node(),
			&dataflow.Context{Node: "src", OnError: dataflow.SkipOnError{Counters: counters}}, out, nil)
		if err := wait(t, done, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		var times []int64
		for _, r := range out.snapshot() {
			times = append(times, r.Time)
		}
		if !reflect.DeepEqual(times, []int64{1, 3, 5}) || counters.SkippedInvalid.Load() != 2 {
			t.Fatalf("times %v skipped %d; want [1 3 5] and 2", times, counters.SkippedInvalid.Load())
		}
	})

	t.Run("dead_letter", func(t *testing.T) {
		counters := &dataflow.Counters{}
		h, closer, err := NewDeadLetter("src", &spec.ErrorPolicy{Action: spec.OnErrorDeadLetter, Topic: "dlq", Brokers: brokers}, counters)
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		out := newTestOutput()
		_, done := startSource(t, testCtx(t, 20*time.Second), node(), &dataflow.Context{Node: "src", OnError: h}, out, nil)
		if err := wait(t, done, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		if out.n() != 3 || counters.DeadLettered.Load() != 2 {
			t.Fatalf("emitted %d dead-lettered %d; want 3 and 2", out.n(), counters.DeadLettered.Load())
		}
		recs := consumeAll(t, brokers, "dlq", 2)
		if string(recs[0].Value) != "not json" || string(recs[1].Value) != `{"ts":"late"}` {
			t.Fatalf("dead letters %q, %q", recs[0].Value, recs[1].Value)
		}
		hdr := headers(recs[0])
		if !strings.Contains(hdr[HeaderError], "invalid JSON") || hdr[HeaderNode] != "src" || hdr[HeaderOrigin] != "topic in partition 0 offset 1" {
			t.Fatalf("headers %v", hdr)
		}
		if hdr := headers(recs[1]); !strings.Contains(hdr[HeaderError], "event time") {
			t.Fatalf("event-time failure headers %v", hdr)
		}
	})
}

// A value of the wrong type for a field the source's schema declares goes
// to on_error at decode, counted, and never reaches the pipeline: the JSON
// string "404" for an int field would pass `status != 404`.
func TestSourceEnforcesSchema(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "in", "dlq"))
	cl := newProducer(t, brokers)
	produce(t, cl, "in", 0, `{"status":200,"r":1}`, `{"status":"404","r":1}`, `{"status":404,"r":2}`, `{"r":1.5}`, `{"status":500,"r":"x"}`, `{"status":201,"r":2.5,"extra":true}`)
	node := func() *spec.Node {
		n := kafkaNode("src", brokers, "in", func(k *spec.KafkaSource) { k.Bounded = true })
		n.Source.Schema = map[string]string{"status": "int", "r": "float"}
		return n
	}
	t.Run("skip", func(t *testing.T) {
		counters := &dataflow.Counters{}
		out := newTestOutput()
		_, done := startSource(t, testCtx(t, 20*time.Second), node(),
			&dataflow.Context{Node: "src", OnError: dataflow.SkipOnError{Counters: counters}}, out, nil)
		if err := wait(t, done, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		for _, r := range out.snapshot() {
			got = append(got, r.Fields.Map())
		}
		want := []map[string]any{
			{"status": int64(200), "r": 1.0},
			{"status": int64(404), "r": 2.0},
			{"status": int64(201), "r": 2.5, "extra": true},
		}
		if !reflect.DeepEqual(got, want) || counters.SkippedInvalid.Load() != 3 {
			t.Fatalf("emitted %v, skipped %d; want %v and 3", got, counters.SkippedInvalid.Load(), want)
		}
	})
	t.Run("fail", func(t *testing.T) {
		out := newTestOutput()
		_, done := startSource(t, testCtx(t, 20*time.Second), node(), &dataflow.Context{Node: "src"}, out, nil)
		err := wait(t, done, 15*time.Second)
		var re *dataflow.RecordError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "topic in partition 0 offset 1") ||
			!strings.Contains(err.Error(), `field "status": want int (the source's schema), got string "404"`) {
			t.Fatalf("want a record error naming the offset and the field, got %v", err)
		}
		if out.n() != 1 {
			t.Fatalf("emitted %d records before the failure, want 1", out.n())
		}
	})
}

func headers(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// consumeAll reads want records of topic from the start (read_committed).
func consumeAll(t testing.TB, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t, 15*time.Second)
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(recs), want, topic)
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func TestSourceWatermarksAndIdleness(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(2, "ev"))
	cl := newProducer(t, brokers)
	node := kafkaNode("src", brokers, "ev", nil)
	idle := spec.Duration(time.Second)
	node.Source.EventTime = &spec.EventTime{
		Field:             "ts",
		MaxOutOfOrderness: spec.Duration(100 * time.Millisecond),
		IdleTimeout:       &idle,
		WatermarkInterval: spec.Duration(5 * time.Millisecond),
	}
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	ctx, cancel := context.WithCancel(testCtx(t, 30*time.Second))
	defer cancel()
	out := newTestOutput()
	_, done := startSource(t, ctx, node, nil, out, func(s *Source) { s.now = clock.Now })

	produce(t, cl, "ev", 0, `{"ts":1000}`)
	eventually(t, 10*time.Second, "first record", func() bool { return out.n() == 1 })
	time.Sleep(30 * time.Millisecond)
	if wm := out.lastWatermark(); wm != -1<<63 {
		t.Fatalf("watermark %d emitted while partition 1 has no data", wm)
	}
	produce(t, cl, "ev", 1, `{"ts":5000}`)
	// min(1000, 5000) - 100ms - 1
	eventually(t, 10*time.Second, "watermark 899", func() bool { return out.lastWatermark() == 899 })
	produce(t, cl, "ev", 0, `{"ts":3000}`)
	eventually(t, 10*time.Second, "watermark 2899", func() bool { return out.lastWatermark() == 2899 })

	// Partition 1 goes quiet: after the idle timeout only partition 0
	// counts... both are quiet here, so the subtask turns idle.
	clock.Advance(2 * time.Second)
	eventually(t, 10*time.Second, "idle", func() bool { i, ok := out.idleState(); return ok && i })

	// A record on partition 0 makes the subtask active; partition 1 stays
	// idle and no longer holds the watermark back.
	produce(t, cl, "ev", 0, `{"ts":9000}`)
	eventually(t, 10*time.Second, "active again", func() bool { i, ok := out.idleState(); return ok && !i })
	eventually(t, 10*time.Second, "watermark 8899", func() bool { return out.lastWatermark() == 8899 })

	o := out
	o.mu.Lock()
	for i := 1; i < len(o.watermarks); i++ {
		if o.watermarks[i] <= o.watermarks[i-1] {
			t.Errorf("watermarks not increasing: %v", o.watermarks)
		}
	}
	o.mu.Unlock()
	cancel()
	if err := wait(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestSourceReadCommittedHidesAbortedTransaction(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "tx"))
	ctx := testCtx(t, 30*time.Second)
	plain := newProducer(t, brokers)
	produce(t, plain, "tx", 0, `{"v":"before"}`)

	// The log ends with an aborted transaction and its marker: a bounded
	// reader must recognise that nothing visible is left.
	txn := newProducer(t, brokers, kgo.TransactionalID("weir-test-txn"))
	for _, commit := range []bool{true, false} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		v := "aborted"
		if commit {
			v = "committed"
		}
		for range 3 {
			if err := txn.ProduceSync(ctx, &kgo.Record{Topic: "tx", Partition: 0, Value: []byte(`{"v":"` + v + `"}`)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			produce(t, plain, "tx", 0, `{"v":"after"}`)
		}
	}

	read := func(iso string) []string {
		out := newTestOutput()
		_, done := startSource(t, ctx, kafkaNode("src", brokers, "tx", func(k *spec.KafkaSource) {
			k.Bounded, k.Isolation = true, iso
		}), nil, out, nil)
		if err := wait(t, done, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, r := range out.snapshot() {
			vs = append(vs, r.Fields.Get("v").(string))
		}
		return vs
	}
	want := []string{"before", "committed", "committed", "committed", "after"}
	if got := read(""); !reflect.DeepEqual(got, want) {
		t.Fatalf("read_committed read %v, want %v", got, want)
	}
	if got := read(ReadUncommitted); len(got) != 8 {
		t.Fatalf("read_uncommitted read %v, want all 8 data records", got)
	}
}

func TestSourceBrokerUnreachableOrTopicMissing(t *testing.T) {
	t.Parallel() // mostly waiting on timeouts
	t.Run("unreachable", func(t *testing.T) {
		start := time.Now()
		_, done := startSource(t, testCtx(t, 30*time.Second), kafkaNode("src", []string{"127.0.0.1:1"}, "orders", nil), nil, newTestOutput(), nil)
		err := wait(t, done, 20*time.Second)
		if !errors.Is(err, ErrBrokersUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), `"orders"`) {
			t.Fatalf("want a clear unreachable error, got %v", err)
		}
		t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	})
	t.Run("topic missing", func(t *testing.T) {
		_, brokers := newCluster(t, kfake.AllowAutoTopicCreation())
		_, done := startSource(t, testCtx(t, 30*time.Second), kafkaNode("src", brokers, "nope", nil), nil, newTestOutput(), nil)
		err := wait(t, done, 20*time.Second)
		if !errors.Is(err, ErrTopicNotFound) || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), brokers[0]) {
			t.Fatalf("want a topic-not-found error, got %v", err)
		}
		// The source must not have created it.
		if _, err := PartitionCount(brokers, "nope"); !errors.Is(err, ErrTopicNotFound) {
			t.Fatalf("topic exists after a source looked for it: %v", err)
		}
	})
	t.Run("cancel while connecting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		_, done := startSource(t, ctx, kafkaNode("src", []string{"127.0.0.1:1"}, "orders", nil), nil, newTestOutput(), func(s *Source) { s.connectBudget = time.Minute })
		time.Sleep(50 * time.Millisecond)
		cancel()
		if err := wait(t, done, 10*time.Second); err != nil {
			t.Fatalf("cancelled Run returned %v", err)
		}
	})
}

func TestNewSourceValidates(t *testing.T) {
	n := kafkaNode("src", nil, "", func(k *spec.KafkaSource) { k.Format = "thrift"; k.Isolation = "x" })
	n.Source.EventTime = &spec.EventTime{Field: "ts +"}
	_, err := NewSource(n, nil)
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("want ErrConfig, got %v", err)
	}
	for _, want := range []string{"brokers", "topic", "thrift", "isolation", "event_time"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestSourceThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const total, parts = 200_000, 4
	_, brokers := newCluster(t, kfake.SeedTopics(parts, "bulk"))
	cl := newProducer(t, brokers, kgo.ProducerLinger(5*time.Millisecond))
	// The limits are a backstop, not a speed goal (that is make bench's):
	// under a loaded machine with the race detector this takes minutes.
	ctx := testCtx(t, 8*time.Minute)
	value := []byte(`{"user":"u-1234","path":"/index.html","status":200,"bytes":5120,"ts":1700000000000}`)
	errc := make(chan error, 1)
	for i := range total {
		cl.Produce(ctx, &kgo.Record{Topic: "bulk", Partition: int32(i % parts), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}

	out := &testOutput{}
	start := time.Now()
	_, done := startSource(t, ctx, kafkaNode("src", brokers, "bulk", func(k *spec.KafkaSource) { k.Bounded = true }), nil, out, nil)
	if err := wait(t, done, 7*time.Minute); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if out.n() != total {
		t.Fatalf("read %d records, want %d", out.n(), total)
	}
	t.Logf("read and decoded %d JSON records in %s: %.0f records/s (race detector on: %v)", total, el.Round(time.Millisecond), float64(total)/el.Seconds(), raceEnabled)
}

func TestSourceFailsWhenBrokerStaysDown(t *testing.T) {
	t.Parallel() // mostly waiting on timeouts
	c, brokers := newCluster(t, kfake.SeedTopics(1, "p"))
	produce(t, newProducer(t, brokers), "p", 0, `{"a":1}`)
	out := newTestOutput()
	_, done := startSource(t, testCtx(t, 30*time.Second), kafkaNode("src", brokers, "p", nil), nil, out,
		func(s *Source) { s.stallTimeout = 3 * time.Second })
	eventually(t, 10*time.Second, "first record", func() bool { return out.n() == 1 })
	c.Close()
	err := wait(t, done, 20*time.Second)
	if !errors.Is(err, ErrBrokersUnreachable) || !strings.Contains(err.Error(), `topic "p" partition 0 at offset 1`) || !strings.Contains(err.Error(), brokers[0]) {
		t.Fatalf("want a clear broker-down error, got %v", err)
	}
	t.Log(err)
}
