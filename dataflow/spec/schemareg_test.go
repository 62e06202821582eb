package spec

import (
	"strings"
	"testing"
)

func TestSchemaRegistryParses(t *testing.T) {
	j := mustParse(t, `
name: sr
pipeline:
  - source:
      kafka:
        brokers: [b:9092]
        topic: in
        format: avro
        schema_registry: {url: "https://sr:8081", username: weir, password: "${env:WEIR_SECRET_SR}", tls: {ca_file: /etc/sr/ca.pem}, timeout: 5s}
  - sink:
      kafka:
        brokers: [b:9092]
        topic: out
        format: protobuf
        schema_registry:
          url: http://sr:8081
          subject: out-v
          message: shop.Order
          bearer_token: "${file:/run/secrets/sr}"
          schema: |
            syntax = "proto3";
            package shop;
            message Order { int64 id = 1; }
`)
	r := j.Pipeline[0].Source.Kafka.SchemaRegistry
	if r == nil || r.URL != "https://sr:8081" || r.Password != "${env:WEIR_SECRET_SR}" || r.TLS == nil || r.TLS.CAFile != "/etc/sr/ca.pem" || r.Timeout.D().Seconds() != 5 {
		t.Fatalf("source registry = %+v", r)
	}
	w := j.Pipeline[1].Sink.Kafka.SchemaRegistry
	if w == nil || w.Subject != "out-v" || w.Message != "shop.Order" || !strings.Contains(w.Schema, "message Order") || w.BearerToken != "${file:/run/secrets/sr}" {
		t.Fatalf("sink registry = %+v", w)
	}
	if DefaultSubject("orders") != "orders-value" {
		t.Fatal(DefaultSubject("orders"))
	}
}

func TestSchemaRegistryErrors(t *testing.T) {
	_, err := Parse([]byte(`
name: sr
pipeline:
  - source: {kafka: {brokers: [b:9092], topic: in, format: avro}}
  - source: {kafka: {brokers: [b:9092], topic: in2, format: json, schema_registry: {url: "http://sr"}}}
  - source: {kafka: {brokers: [b:9092], topic: in3, format: avro, schema_registry: {url: "ftp://sr", subject: s, username: u, tls: true}}}
  - source: {kafka: {brokers: [b:9092], topic: in4, format: thrift}}
  - inputs: [source-0]
    sink: {kafka: {brokers: [b:9092], topic: out, format: avro, schema_registry: {url: "http://sr", message: M, bearer_token: t, username: u, password: p}}}
  - inputs: [source-1]
    sink: {kafka: {brokers: [b:9092], topic: out2, format: json_schema, schema_registry: {url: "http://sr", tls: true, timeout: -1s}}}
`))
	es, ok := AsErrors(err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	text := es.Error()
	for _, w := range []string{
		"pipeline[0].source.kafka.schema_registry: required with format avro",
		`pipeline[1].source.kafka.schema_registry: only with format avro, protobuf, json_schema (format "json" needs no registry)`,
		`pipeline[2].source.kafka.schema_registry.url: "ftp://sr": want http://host:port`,
		"pipeline[2].source.kafka.schema_registry.subject: only on a sink",
		"pipeline[2].source.kafka.schema_registry.password: username and password go together",
		`pipeline[3].source.kafka.format: want json, raw, avro, protobuf or json_schema, got "thrift"`,
		"pipeline[4].sink.kafka.schema_registry.message: only with format protobuf",
		"pipeline[4].sink.kafka.schema_registry.bearer_token: give username/password or bearer_token, not both",
		`pipeline[5].sink.kafka.schema_registry.tls: set, but url "http://sr" is http://`,
		"pipeline[5].sink.kafka.schema_registry.timeout: must be >= 0",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
}
