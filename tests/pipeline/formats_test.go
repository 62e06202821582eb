package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/weir-stream/weir/connectors/format"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/internal/cluster"
)

const paymentV1 = `{"type":"record","name":"Payment","namespace":"shop","fields":[
  {"name":"id","type":"long"},{"name":"user","type":"string"},{"name":"cents","type":"long"}]}`

// v2 adds a field with a default: BACKWARD compatible.
const paymentV2 = `{"type":"record","name":"Payment","namespace":"shop","fields":[
  {"name":"id","type":"long"},{"name":"user","type":"string"},{"name":"cents","type":"long"},
  {"name":"currency","type":"string","default":"EUR"}]}`

const paymentOut = `syntax = "proto3";
package shop;
message Charged {
  int64 id = 1;
  string user = 2;
  double euros = 3;
  optional string currency = 4;
}`

// TestAvroToProtobufJobWithSchemaEvolution runs a job that reads Avro
// and writes Protobuf through a schema registry. The producer registers
// v2 of its schema (an added field) while the job runs: the job keeps
// running, reads the new field from the records that carry v2's id, and
// its output holds every record, correctly converted.
func TestAvroToProtobufJobWithSchemaEvolution(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2, Kafka: true})
	reg := srfake.New()
	defer reg.Close()
	c.CreateTopic(t, "payments", 2)
	c.CreateTopic(t, "charged", 1)

	produce := func(schema string, from, to int, currency string) int {
		cl, err := format.NewRegistry(format.RegistryConfig{URL: reg.URL()})
		if err != nil {
			t.Fatal(err)
		}
		enc, err := format.NewEncoder(context.Background(), cl, format.EncoderConfig{Format: format.Avro, Subject: "payments-value", Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []cluster.Message
		for i := from; i < to; i++ {
			m := map[string]any{"id": int64(i), "user": fmt.Sprintf("u%d", i%3), "cents": int64(i * 100)}
			if currency != "" {
				m["currency"] = currency
			}
			b, err := enc.Append(nil, dataflow.FieldsOf(m))
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, cluster.Message{Partition: int32(i % 2), Value: b})
		}
		c.Produce(t, "payments", msgs...)
		return enc.ID()
	}
	v1 := produce(paymentV1, 0, 10, "")

	id := c.Submit(t, strings.NewReplacer("{{sr}}", reg.URL(), "{{proto}}", indent(paymentOut, "            ")).Replace(`name: avro-to-proto
parallelism: 2
restart: {strategy: none}
pipeline:
  - name: src
    source:
      kafka:
        brokers: ["${KAFKA_BROKERS}"]
        topic: payments
        format: avro
        schema_registry: {url: "{{sr}}"}
  - name: big
    filter: cents >= 200
  - name: conv
    map: {euros: cents / 100.0}
  - name: out
    parallelism: 1
    sink:
      kafka:
        brokers: ["${KAFKA_BROKERS}"]
        topic: charged
        key: user
        format: protobuf
        schema_registry:
          url: "{{sr}}"
          message: Charged
          schema: |
{{proto}}
`))
	c.WaitState(t, id, "RUNNING", 40*time.Second)
	waitOutput := func(n int) []cluster.Message {
		var msgs []cluster.Message
		cluster.Eventually(t, 60*time.Second, func() bool {
			msgs = c.ReadTopic(t, "charged")
			return len(msgs) >= n
		}, "%d messages on charged", n)
		return msgs
	}
	waitOutput(8) // ids 2..9

	// Mid-stream, the producer moves to v2.
	v2 := produce(paymentV2, 10, 20, "USD")
	if v2 == v1 {
		t.Fatalf("v2 registered with v1's id %d", v1)
	}
	msgs := waitOutput(18)
	if j := c.WaitState(t, id, "RUNNING", time.Second); j.State != "RUNNING" {
		t.Fatalf("job %s", j.State)
	}
	c.Cancel(t, id)

	cl, err := format.NewRegistry(format.RegistryConfig{URL: reg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := format.NewDecoder(format.Protobuf, cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, m := range msgs {
		f, err := dec.Decode(context.Background(), m.Value)
		if err != nil {
			t.Fatalf("output at offset %d: %v", m.Offset, err)
		}
		got = append(got, string(m.Key)+" "+f.String())
	}
	for i := 2; i < 20; i++ {
		cur := "<nil>"
		if i >= 10 {
			cur = "USD"
		}
		want = append(want, fmt.Sprintf("u%d {id: %d, user: u%d, euros: %v, currency: %s}", i%3, i, i%3, float64(i), cur))
	}
	sameLines(t, "topic charged", got, want)
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n")
}
