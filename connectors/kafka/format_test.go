package kafka

import (
	"context"
	"errors"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/weir-stream/weir/connectors/format"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

const tradeAvro = `{"type":"record","name":"Trade","namespace":"weir.test","fields":[
  {"name":"sym","type":"string"},{"name":"qty","type":"long"},{"name":"px","type":"double"},
  {"name":"tags","type":{"type":"array","items":"string"}},{"name":"venue","type":["null","string"],"default":null}]}`

const tradeProto = `syntax = "proto3";
package weir.test;
message Trade {
  string sym = 1;
  int64 qty = 2;
  double px = 3;
  repeated string tags = 4;
  optional string venue = 5;
}`

func trades(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		var venue any
		if i%2 == 0 {
			venue = "XNYS"
		}
		out[i] = map[string]any{"sym": []string{"A", "B", "C"}[i%3], "qty": int64(i), "px": float64(i) + 0.5, "tags": []any{"t"}, "venue": venue}
	}
	return out
}

func registryBlock(url string) *spec.SchemaRegistry {
	return &spec.SchemaRegistry{URL: url, Timeout: spec.Duration(time.Second)}
}

// TestFormatRoundTripThroughRegistry: a sink encodes and registers its
// schema, the wire carries the Confluent framing, a source decodes by
// the id in each message: for every registry format, over a kfake broker
// and an srfake registry, both over the wire.
func TestFormatRoundTripThroughRegistry(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(2, "avro", "protobuf", "json_schema"))
	reg := srfake.New()
	defer reg.Close()
	for _, c := range []struct {
		format, schema string
		typ            sr.SchemaType
	}{
		{"avro", tradeAvro, sr.TypeAvro},
		{"protobuf", tradeProto, sr.TypeProtobuf},
		{"json_schema", `{"type":"object"}`, sr.TypeJSON},
	} {
		t.Run(c.format, func(t *testing.T) {
			topic := c.format
			s := openSink(t, sinkNode(brokers, topic, func(k *spec.KafkaSink) {
				k.Format, k.Key = c.format, "sym"
				k.SchemaRegistry = registryBlock(reg.URL())
				k.SchemaRegistry.Schema = c.schema
			}), nil)
			want := trades(20)
			for _, m := range want {
				if err := s.Process(&dataflow.Record{Fields: dataflow.FieldsOf(m)}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Flush(testCtx(t, 20*time.Second)); err != nil {
				t.Fatal(err)
			}
			// TopicNameStrategy: the subject is <topic>-value.
			ss, ok := reg.GetSchema(topic+"-value", 1)
			if !ok || ss.Type != c.typ {
				t.Fatalf("subject %s-value: %+v, %v", topic, ss, ok)
			}
			raw := consumeAll(t, brokers, topic, len(want))
			if v := raw[0].Value; v[0] != 0 || int(v[4]) != ss.ID {
				t.Fatalf("header % x, schema id %d", v[:5], ss.ID)
			}

			out := newTestOutput()
			_, done := startSource(t, testCtx(t, 20*time.Second), kafkaNode("src", brokers, topic, func(k *spec.KafkaSource) {
				k.Format, k.Bounded = c.format, true
				k.SchemaRegistry = registryBlock(reg.URL())
			}), nil, out, nil)
			if err := wait(t, done, 15*time.Second); err != nil {
				t.Fatal(err)
			}
			got := map[int64]map[string]any{}
			for _, r := range out.snapshot() {
				m := r.Fields.Map()
				if c.format == "json_schema" && m["venue"] == nil {
					m["venue"] = nil // JSON writes the null field
				}
				got[m["qty"].(int64)] = m
			}
			if len(got) != len(want) {
				t.Fatalf("read %d records, want %d", len(got), len(want))
			}
			for _, w := range want {
				if g := got[w["qty"].(int64)]; !reflect.DeepEqual(g, w) {
					t.Fatalf("got %#v\nwant %#v", g, w)
				}
			}
		})
	}
}

// TestFramedSourceBadRecords: values without the magic byte, with an id
// the registry does not know, or with a payload that does not match
// their schema go through on_error with what and where.
func TestFramedSourceBadRecords(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "in", "dlq"))
	reg := srfake.New()
	defer reg.Close()
	id, _, err := reg.RegisterSchema("in-value", sr.Schema{Schema: tradeAvro, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	good := encodeAvro(t, reg.URL(), "in-value", trades(1)[0])
	cl := newProducer(t, brokers)
	produce(t, cl, "in", 0, string(good), `{"sym":"json"}`, string([]byte{0, 0, 0, 0, 99, 2}), string(good[:8]), string(good))
	node := func() *spec.Node {
		return kafkaNode("src", brokers, "in", func(k *spec.KafkaSource) {
			k.Format, k.Bounded = "avro", true
			k.SchemaRegistry = registryBlock(reg.URL())
		})
	}
	t.Run("fail", func(t *testing.T) {
		out := newTestOutput()
		_, done := startSource(t, testCtx(t, 20*time.Second), node(), &dataflow.Context{Node: "src"}, out, nil)
		err := wait(t, done, 15*time.Second)
		var re *dataflow.RecordError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "topic in partition 0 offset 1") || !strings.Contains(err.Error(), "unknown magic byte 0x7b") {
			t.Fatalf("want a record error naming topic/partition/offset and the magic byte, got %v", err)
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
		if out.n() != 2 || counters.DeadLettered.Load() != 3 {
			t.Fatalf("emitted %d dead-lettered %d; want 2 and 3", out.n(), counters.DeadLettered.Load())
		}
		recs := consumeAll(t, brokers, "dlq", 3)
		for i, want := range []string{"unknown magic byte 0x7b", "schema id 99", "schema id " + strconv.Itoa(id)} {
			hdr := headers(recs[i])
			if !strings.Contains(hdr[HeaderError], want) || hdr[HeaderOrigin] != "topic in partition 0 offset "+strconv.Itoa(i+1) {
				t.Errorf("dead letter %d: headers %v, want error with %q", i, hdr, want)
			}
		}
	})
}

// encodeAvro frames one record with the latest schema of subject.
func encodeAvro(t *testing.T, url, subject string, m map[string]any) []byte {
	t.Helper()
	reg, err := format.NewRegistry(format.RegistryConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := format.NewEncoder(context.Background(), reg, format.EncoderConfig{Format: format.Avro, Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	b, err := enc.Append(nil, dataflow.FieldsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFramedSourceRegistryDown: a registry that does not answer fails
// the task (the job restarts) after its timeout, naming the registry and
// where the source was; nothing is dead-lettered.
func TestFramedSourceRegistryDown(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(1, "in"))
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	cl := newProducer(t, brokers)
	produce(t, cl, "in", 0, string([]byte{0, 0, 0, 0, 1, 2, 'a'}))
	counters := &dataflow.Counters{}
	out := newTestOutput()
	_, done := startSource(t, testCtx(t, 20*time.Second), kafkaNode("src", brokers, "in", func(k *spec.KafkaSource) {
		k.Format, k.Bounded = "avro", true
		k.SchemaRegistry = &spec.SchemaRegistry{URL: url, Timeout: spec.Duration(300 * time.Millisecond)}
	}), &dataflow.Context{Node: "src", OnError: dataflow.SkipOnError{Counters: counters}}, out, nil)
	err := wait(t, done, 15*time.Second)
	if !errors.Is(err, format.ErrRegistryUnavailable) || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), `topic "in" partition 0 offset 0`) {
		t.Fatalf("err %v", err)
	}
	if counters.SkippedInvalid.Load() != 0 || out.n() != 0 {
		t.Fatalf("skipped %d, emitted %d", counters.SkippedInvalid.Load(), out.n())
	}
}

// TestFramedSinkErrors: a schema that does not parse is refused before
// connecting; a record that does not fit the schema goes to on_error.
func TestFramedSinkErrors(t *testing.T) {
	_, err := NewSink(sinkNode([]string{"b:1"}, "out", func(k *spec.KafkaSink) {
		k.Format = "avro"
		k.SchemaRegistry = &spec.SchemaRegistry{URL: "http://sr", Schema: `{"type":"record"}`}
	}), nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "schema_registry.schema") {
		t.Fatalf("err %v", err)
	}
	_, brokers := newCluster(t, kfake.SeedTopics(1, "out"))
	reg := srfake.New()
	defer reg.Close()
	counters := &dataflow.Counters{}
	dctx := &dataflow.Context{Node: "out", OnError: dataflow.SkipOnError{Counters: counters}}
	s := openSink(t, sinkNode(brokers, "out", func(k *spec.KafkaSink) {
		k.Format = "avro"
		k.SchemaRegistry = registryBlock(reg.URL())
		k.SchemaRegistry.Schema = tradeAvro
	}), dctx)
	if err := s.Process(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"sym": "A"})}, nil); err != nil {
		t.Fatal(err)
	}
	if counters.SkippedInvalid.Load() != 1 {
		t.Fatalf("skipped %d, want 1", counters.SkippedInvalid.Load())
	}
}

// TestFramedExactlyOnceSink: the exactly-once sink registers its schema
// when it opens and writes framed values in its transactions; a
// read_committed reader decodes exactly what was committed.
func TestFramedExactlyOnceSink(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(eosPartitions, eosTopic))
	reg := srfake.New()
	defer reg.Close()
	const kv = `{"type":"record","name":"KV","fields":[{"name":"k","type":"string"},{"name":"value","type":"string"}]}`
	s := mustEOSSink(t, eosNode(brokers, func(k *spec.KafkaSink) {
		k.Format = "avro"
		k.SchemaRegistry = registryBlock(reg.URL())
		k.SchemaRegistry.Schema = kv
	}), eosCtx("job1", 0, 1))
	writeRange(t, s, 0, 50)
	if _, err := s.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	if err := s.NotifyCheckpointComplete(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	rc, err := format.NewRegistry(format.RegistryConfig{URL: reg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := format.NewDecoder(format.Avro, rc, nil)
	var got []string
	for _, v := range readTopic(t, brokers, kgo.ReadCommitted()) {
		f, err := dec.Decode(context.Background(), []byte(v))
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		got = append(got, f.Get("value").(string))
	}
	slices.Sort(got)
	checkExactlyOnce(t, got, values(0, 50))
}
