package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/weir-stream/weir/connectors/format"
	"github.com/weir-stream/weir/dataflow"
)

// accessLogAvro is the access-log record as the datagen and loadgen make
// it, in Avro.
const accessLogAvro = `{"type":"record","name":"AccessLog","fields":[
  {"name":"ip","type":"string"},{"name":"ts","type":"long"},{"name":"url","type":"string"},
  {"name":"status","type":"long"},{"name":"bytes","type":"long"},{"name":"ua","type":"string"}]}`

// formatsSpec reads one topic in a format and drops what it reads after a
// filter on a decoded field, so the job's CPU is the source's: fetching,
// decoding and building records.
func formatsSpec(brokers, topic, format, registry string) string {
	reg := ""
	if registry != "" {
		reg = fmt.Sprintf(", schema_registry: {url: %q}", registry)
	}
	return fmt.Sprintf(`name: formats-%s-bench
parallelism: 2
pipeline:
  - name: src
    source:
      kafka: {brokers: [%q], topic: %s, format: %s, bounded: true%s}
  - name: ok
    filter: status != 404
  - name: out
    sink:
      discard: {}
`, format, brokers, topic, format, reg)
}

// benchFormats prints avro_vs_json_decode_per_cpu: events per CPU-second
// of the worker reading the same records as Avro (through a schema
// registry, served here by srfake) and as JSON, in alternating runs; the
// ratio is the median of the per-pair ratios.
func (e *env) benchFormats() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	reg := srfake.NewRegistry()
	srv := &http.Server{Handler: reg.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	url := "http://" + l.Addr().String()

	if err := e.writeFormatTopics(url); err != nil {
		return err
	}
	var avroCPU, jsonCPU, ratios []float64
	for i := 0; i < *runs; i++ {
		a, err := e.runJob(formatsSpec(e.kafka, "fmt-avro", "avro", url), *events)
		if err != nil {
			return fmt.Errorf("formats: avro run %d: %w", i, err)
		}
		j, err := e.runJob(formatsSpec(e.kafka, "fmt-json", "json", ""), *events)
		if err != nil {
			return fmt.Errorf("formats: json run %d: %w", i, err)
		}
		avroCPU, jsonCPU, ratios = append(avroCPU, a.perCPU), append(jsonCPU, j.perCPU), append(ratios, a.perCPU/j.perCPU)
	}
	fmt.Printf("BENCH avro_decode_events_per_cpu_s %.0f events/cpu_s\n", median(avroCPU))
	fmt.Printf("BENCH json_decode_events_per_cpu_s %.0f events/cpu_s\n", median(jsonCPU))
	fmt.Printf("BENCH avro_vs_json_decode_per_cpu %.2f x\n", median(ratios))
	return nil
}

// writeFormatTopics writes -events access-log records to fmt-json (JSON)
// and fmt-avro (Avro, its schema registered under fmt-avro-value).
func (e *env) writeFormatTopics(registry string) error {
	ctx := context.Background()
	rc, err := format.NewRegistry(format.RegistryConfig{URL: registry})
	if err != nil {
		return err
	}
	enc, err := format.NewEncoder(ctx, rc, format.EncoderConfig{Format: format.Avro, Subject: "fmt-avro-value", Schema: accessLogAvro})
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	shape := dataflow.MustShape("ip", "ts", "url", "status", "bytes", "ua")
	urls := []string{"/", "/index.html", "/api/v1/items", "/static/app.js", "/login"}
	statuses := []int64{200, 200, 200, 304, 404, 500}
	var perr error
	done := func(_ *kgo.Record, err error) {
		if err != nil && perr == nil {
			perr = err
		}
	}
	for i := int64(0); i < *events; i++ {
		f := dataflow.NewFields(shape, []any{
			fmt.Sprintf("10.0.%d.%d", i%256, i*7%256), 1_700_000_000_000 + i*10, urls[i%int64(len(urls))],
			statuses[i%int64(len(statuses))], 200 + i*31%5000, "Mozilla/5.0 (X11; Linux x86_64) bench",
		})
		j, err := dataflow.AppendJSON(nil, f)
		if err != nil {
			return err
		}
		a, err := enc.Append(nil, f)
		if err != nil {
			return err
		}
		cl.Produce(ctx, &kgo.Record{Topic: "fmt-json", Value: j}, done)
		cl.Produce(ctx, &kgo.Record{Topic: "fmt-avro", Value: a}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return perr
}
