package spec

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestKafkaSecurityParses(t *testing.T) {
	j := mustParse(t, `
name: sec
pipeline:
  - source:
      kafka:
        brokers: [b:9093]
        topic: in
        tls: {ca_file: /etc/kafka/ca.pem, cert_file: c.pem, key_file: k.pem, server_name: kafka.example}
        sasl: {mechanism: SCRAM-SHA-512, username: weir, password: "${env:WEIR_SECRET_KAFKA}"}
  - sink: {kafka: {brokers: [b:9093], topic: out, tls: true, sasl: {mechanism: PLAIN, username: u, password: p}}}
  - inputs: [source-0]
    sink: {kafka: {brokers: [b:9092], topic: plain, tls: false}}
`)
	src := j.Pipeline[0].Source.Kafka
	if src.TLS == nil || src.TLS.CAFile != "/etc/kafka/ca.pem" || src.TLS.ServerName != "kafka.example" {
		t.Fatalf("source tls = %+v", src.TLS)
	}
	if src.SASL == nil || src.SASL.Mechanism != "SCRAM-SHA-512" || src.SASL.Password != "${env:WEIR_SECRET_KAFKA}" {
		t.Fatalf("source sasl = %+v", src.SASL)
	}
	if k := j.Pipeline[1].Sink.Kafka; k.TLS == nil || *k.TLS != (KafkaTLS{}) {
		t.Fatalf("tls: true = %+v", k.TLS)
	}
	if k := j.Pipeline[2].Sink.Kafka; k.TLS != nil {
		t.Fatalf("tls: false = %+v", k.TLS)
	}
	// `tls: true` is written back as true, so the stored spec reads the same.
	out, err := yaml.Marshal(j.Pipeline[1].Sink.Kafka)
	if err != nil || !strings.Contains(string(out), "tls: true") {
		t.Fatalf("marshal: %v\n%s", err, out)
	}
}

func TestKafkaSecurityErrors(t *testing.T) {
	_, err := Parse([]byte(`
name: sec
pipeline:
  - source:
      kafka:
        brokers: [b:9093]
        topic: in
        tls: {cert_file: c.pem, ca_file: ca.pem, insecure_skip_verify: true}
        sasl: {mechanism: GSSAPI}
  - sink: {kafka: {brokers: [b:9093], topic: out, tls: maybe, sasl: {mechanism: PLAIN, username: u}}}
`))
	es, ok := AsErrors(err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	text := es.Error()
	for _, w := range []string{
		"pipeline[0].source.kafka.tls: cert_file and key_file go together",
		"pipeline[0].source.kafka.tls.insecure_skip_verify: contradicts ca_file",
		`pipeline[0].source.kafka.sasl.mechanism: "GSSAPI": want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`,
		"pipeline[0].source.kafka.sasl.username: required",
		"pipeline[0].source.kafka.sasl.password: required",
		`pipeline[1].sink.kafka.tls: want true, false or a mapping`,
		"pipeline[1].sink.kafka.sasl.password: required",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
}
