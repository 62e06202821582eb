package kafka

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// dlqCase is a message written to the input topic and what its dead letter
// must carry.
type dlqCase struct {
	key, value []byte // nil: null
	headers    []kgo.RecordHeader
}

// dlqInput writes cases to topic in, partition 0, in order.
func dlqInput(t *testing.T, brokers []string, cases []dlqCase) {
	t.Helper()
	cl := newProducer(t, brokers)
	var recs []*kgo.Record
	for _, c := range cases {
		recs = append(recs, &kgo.Record{Topic: "in", Partition: 0, Key: c.key, Value: c.value, Headers: c.headers})
	}
	if err := cl.ProduceSync(testCtx(t, 30*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// checkDeadLetter checks that got carries want's key, value and headers
// byte for byte (null staying null), followed by weir's headers.
func checkDeadLetter(t *testing.T, got *kgo.Record, want dlqCase, errPart, origin string) {
	t.Helper()
	if (got.Key == nil) != (want.key == nil) || !bytes.Equal(got.Key, want.key) {
		t.Errorf("offset %d: key %q (null %v), want %q (null %v)", got.Offset, got.Key, got.Key == nil, want.key, want.key == nil)
	}
	if (got.Value == nil) != (want.value == nil) || !bytes.Equal(got.Value, want.value) {
		t.Errorf("offset %d: value %q (null %v), want %q (null %v)", got.Offset, got.Value, got.Value == nil, want.value, want.value == nil)
	}
	n := len(want.headers)
	if len(got.Headers) != n+3 {
		t.Fatalf("offset %d: headers %v, want the %d original ones and weir's 3", got.Offset, got.Headers, n)
	}
	for i, h := range want.headers {
		g := got.Headers[i]
		if g.Key != h.Key || !bytes.Equal(g.Value, h.Value) || (g.Value == nil) != (h.Value == nil) {
			t.Errorf("offset %d: header %d is %q=%q, want %q=%q", got.Offset, i, g.Key, g.Value, h.Key, h.Value)
		}
	}
	weir := got.Headers[n:]
	if weir[0].Key != HeaderError || !strings.Contains(string(weir[0].Value), errPart) ||
		weir[1].Key != HeaderNode || weir[2].Key != HeaderOrigin || string(weir[2].Value) != origin {
		t.Errorf("offset %d: weir's headers %v, want %s containing %q, %s, %s %q", got.Offset, weir, HeaderError, errPart, HeaderNode, HeaderOrigin, origin)
	}
}

// TestDeadLetterCarriesTheOriginalMessage: a message that fails to decode
// is dead-lettered with its key, value and headers exactly as read (before,
// the key and headers were dropped and a null value became {}).
func TestDeadLetterCarriesTheOriginalMessage(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "in", "dlq"))
	cases := []dlqCase{
		{key: []byte("k0"), value: []byte("not json"), headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}, {Key: "empty", Value: []byte{}}}},
		{key: nil, value: nil}, // a tombstone: null key, null value
		{key: []byte{}, value: []byte{0xff, 0x00, '{'}, headers: []kgo.RecordHeader{{Key: "dup", Value: []byte("a")}, {Key: "dup", Value: []byte("b")}}},
		{key: []byte("k3"), value: []byte(`{"ts":"late"}`), headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}},
	}
	dlqInput(t, brokers, cases)
	h, closer, err := NewDeadLetter("src", &spec.ErrorPolicy{Action: spec.OnErrorDeadLetter, Topic: "dlq", Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	n := kafkaNode("src", brokers, "in", func(k *spec.KafkaSource) { k.Bounded = true })
	n.Source.EventTime = &spec.EventTime{Field: "ts"}
	out := newTestOutput()
	_, done := startSource(t, testCtx(t, 20*time.Second), n, &dataflow.Context{Node: "src", OnError: h}, out, nil)
	if err := wait(t, done, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, brokers, "dlq", len(cases))
	errs := []string{"invalid JSON", "invalid JSON", "invalid JSON", "event time"}
	for i, c := range cases {
		checkDeadLetter(t, got[i], c, errs[i], fmt.Sprintf("topic in partition 0 offset %d", i))
	}
}

// TestDeadLetterOfALaterFailureCarriesTheOriginal: a record that decoded
// and then failed further down the pipeline (here: handed to the policy as
// an operator does after an expression failed) is dead-lettered as the
// message it came from, not re-encoded from its fields.
func TestDeadLetterOfALaterFailureCarriesTheOriginal(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "in", "dlq"))
	c := dlqCase{key: []byte("k"), value: []byte(`{"b": 1.50, "a": "x"}`), headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
	dlqInput(t, brokers, []dlqCase{c})
	out := newTestOutput()
	_, done := startSource(t, testCtx(t, 20*time.Second), kafkaNode("src", brokers, "in", func(k *spec.KafkaSource) { k.Bounded = true }),
		&dataflow.Context{Node: "src"}, out, nil)
	if err := wait(t, done, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	recs := out.snapshot()
	if len(recs) != 1 {
		t.Fatalf("emitted %d records, want 1", len(recs))
	}
	h, closer, err := NewDeadLetter("calc", &spec.ErrorPolicy{Action: spec.OnErrorDeadLetter, Topic: "dlq", Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	// What a map operator emits: a copy with other fields.
	r := recs[0]
	r.Fields = dataflow.FieldsOf(map[string]any{"a": "x", "b": 1.5, "c": math.Inf(1)})
	if err := h.Handle(&r, nil, errors.New("map: division by zero")); err != nil {
		t.Fatal(err)
	}
	checkDeadLetter(t, consumeAll(t, brokers, "dlq", 1)[0], c, "division by zero", "topic in partition 0 offset 0")
}

// TestSinkEncodingFailureDeadLetter: a record the sink cannot encode (a
// float JSON cannot carry) is dead-lettered as valid JSON, with the value
// written as a string, keyed by the record's key, with the reason in
// weir.error (before, the value was Go's rendering, {ip: …, x: +Inf}).
func TestSinkEncodingFailureDeadLetter(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "out", "dlq"))
	h, closer, err := NewDeadLetter("out", &spec.ErrorPolicy{Action: spec.OnErrorDeadLetter, Topic: "dlq", Brokers: brokers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	for _, delivery := range []string{"at-least-once", "exactly-once"} {
		t.Run(delivery, func(t *testing.T) {
			dctx := &dataflow.Context{Node: "out", OnError: h, JobID: "job-" + delivery}
			s := openSink(t, sinkNode(brokers, "out", func(k *spec.KafkaSink) { k.Delivery = delivery }), dctx)
			rec := &dataflow.Record{
				Key: "10.0.0.1",
				Fields: dataflow.FieldsOf(map[string]any{"ip": "10.0.0.1", "x": math.Inf(1), "y": math.NaN(),
					"z": []any{math.Inf(-1), int64(2)}}),
				Origin: dataflow.Origin{Source: "gen", Offset: 7},
			}
			if err := s.Process(rec, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	got := consumeAll(t, brokers, "dlq", 2)
	for _, r := range got {
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("dead letter %q is not JSON: %v", r.Value, err)
		}
		if want := `{"ip":"10.0.0.1","x":"+Inf","y":"NaN","z":["-Inf",2]}`; string(r.Value) != want {
			t.Errorf("dead letter %s, want %s", r.Value, want)
		}
		if string(r.Key) != "10.0.0.1" {
			t.Errorf("key %q, want the record's key", r.Key)
		}
		hdr := headers(r)
		if !strings.Contains(hdr[HeaderError], "+Inf") || hdr[HeaderNode] != "out" || hdr[HeaderOrigin] != "source gen record 7" {
			t.Errorf("headers %v", hdr)
		}
	}
}

func TestFieldsJSONIsAlwaysJSON(t *testing.T) {
	type odd struct{ C chan int }
	for _, f := range []dataflow.Fields{
		{},
		dataflow.FieldsOf(map[string]any{"a": int64(1), "b": "s"}),
		dataflow.FieldsOf(map[string]any{"n": math.NaN(), "m": map[string]any{"i": math.Inf(1)}}),
		dataflow.FieldsOf(map[string]any{"ch": odd{C: make(chan int)}, "t": time.UnixMilli(0).UTC()}),
	} {
		b := fieldsJSON(f)
		if !json.Valid(b) {
			t.Errorf("%v: %q is not JSON", f, b)
		}
	}
}
