package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func noEnv(string) (string, bool) { return "", false }

func loadExample(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustParse(t *testing.T, src string) *Job {
	t.Helper()
	j, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return j
}

func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if len(files) < 2 {
		t.Fatalf("want the example specs, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := ExpandEnv(loadExample(t, filepath.Base(f)), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIPVisitsExample(t *testing.T) {
	data, err := ExpandEnv(loadExample(t, "ip-visits.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if j.Name != "ip-visits" || j.Parallelism != 2 || j.MaxParallelism != 128 {
		t.Fatalf("job = %q p=%d maxp=%d", j.Name, j.Parallelism, j.MaxParallelism)
	}
	var kinds []string
	for i := range j.Pipeline {
		kinds = append(kinds, j.Pipeline[i].Kind())
	}
	if got := strings.Join(kinds, ","); got != "source,filter,key_by,window,sink" {
		t.Fatalf("kinds = %s", got)
	}
	src := j.Pipeline[0].Source
	if !reflect.DeepEqual(src.Kafka.Brokers, []string{"127.0.0.1:9092"}) || src.Kafka.Topic != "access-log" {
		t.Fatalf("source = %+v", src.Kafka)
	}
	if src.EventTime.Field != "ts" || src.EventTime.MaxOutOfOrderness.D() != 5*time.Second {
		t.Fatalf("event time = %+v", src.EventTime)
	}
	w := j.Node("per-minute").Window
	if w.Tumbling.D() != time.Minute || !reflect.DeepEqual(w.Aggregates, Fields{{"count", "count()"}, {"bytes", "sum(bytes)"}}) {
		t.Fatalf("window = %+v", w)
	}
	if k := j.Node("by-ip").KeyBy; k.Expr != "ip" || k.As != "ip" {
		t.Fatalf("key_by = %+v", k)
	}
	sink := j.Node("ip-visits").Sink.Kafka
	if sink.Topic != "ip-visits" || sink.Key != "ip" || sink.Format != "json" || sink.Delivery != "at-least-once" {
		t.Fatalf("sink = %+v", sink)
	}
	if up := j.Upstream("per-minute"); len(up) != 1 || up[0].Name != "by-ip" {
		t.Fatalf("Upstream = %v", up)
	}

	env := map[string]string{"PARALLELISM": "4", "KAFKA_BROKERS": "a:9092,b:9092"}
	data, err = ExpandEnv(loadExample(t, "ip-visits.yaml"), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	j = mustParse(t, string(data))
	if j.Parallelism != 4 || !reflect.DeepEqual(j.Pipeline[0].Source.Kafka.Brokers, []string{"a:9092", "b:9092"}) {
		t.Fatalf("overrides not applied: p=%d brokers=%v", j.Parallelism, j.Pipeline[0].Source.Kafka.Brokers)
	}
}

func TestDefaults(t *testing.T) {
	j := mustParse(t, `
name: d
pipeline:
  - source:
      kafka: {brokers: [b:1], topic: in}
      event_time: {field: ts}
  - map: {z: "1", a: "2", m: "3"}
  - flat_map: {explode: items}
  - key_by: "lower(user)"
  - window: {tumbling: 10s, aggregates: {n: count()}}
  - sink: {kafka: {brokers: b:1, topic: out}}
  - inputs: [map-1]
    sink: {stdout: {}}
`)
	if j.Parallelism != 1 || j.MaxParallelism != 128 || j.OnError.Action != OnErrorFail {
		t.Fatalf("job defaults: %+v", j)
	}
	names := []string{"source-0", "map-1", "flat_map-2", "key_by-3", "window-4", "sink-5", "sink-6"}
	for i, want := range names {
		n := j.Pipeline[i]
		if n.Name != want || n.Parallelism != 1 || n.OnError == nil || n.OnError.Action != OnErrorFail {
			t.Errorf("node %d: %+v", i, n)
		}
		if i > 0 && i < 6 && !reflect.DeepEqual(n.Inputs, []string{names[i-1]}) {
			t.Errorf("node %d inputs %v", i, n.Inputs)
		}
	}
	if j.Pipeline[0].Inputs != nil {
		t.Errorf("source inputs %v", j.Pipeline[0].Inputs)
	}
	k := j.Pipeline[0].Source.Kafka
	if k.Format != "json" || k.StartFrom != "earliest" || k.Isolation != "read_committed" {
		t.Errorf("kafka source defaults %+v", k)
	}
	et := j.Pipeline[0].Source.EventTime
	if et.IdleTimeout.D() != 30*time.Second || et.WatermarkInterval.D() != 200*time.Millisecond || et.MaxOutOfOrderness != 0 {
		t.Errorf("event time defaults %+v", et)
	}
	if got := j.Pipeline[1].Map; !reflect.DeepEqual(got, Fields{{"z", "1"}, {"a", "2"}, {"m", "3"}}) {
		t.Errorf("map order %v", got)
	}
	if j.Pipeline[2].FlatMap.As != "value" || j.Pipeline[3].KeyBy.As != "key" || j.Pipeline[4].Window.Late != "drop" {
		t.Errorf("flat_map/key_by/window defaults")
	}
	if d := j.Pipeline[5].Sink.Kafka; d.Delivery != "at-least-once" || d.Format != "json" {
		t.Errorf("kafka sink defaults %+v", d)
	}
	if j.Pipeline[6].Sink.Stdout.Format != "json" {
		t.Errorf("stdout default")
	}

	j = mustParse(t, `
name: d
parallelism: 3
on_error: skip
pipeline:
  - source: {datagen: {}, event_time: {field: ts, idle_timeout: 0s}}
  - parallelism: 2
    on_error: {action: dead_letter, topic: dlq, brokers: [b:1]}
    sink: {discard: {}}
`)
	if j.Pipeline[0].Source.Datagen.Profile != "access-log" || j.Pipeline[0].Parallelism != 3 || j.Pipeline[1].Parallelism != 2 {
		t.Errorf("datagen/parallelism defaults: %+v", j.Pipeline)
	}
	if *j.Pipeline[0].Source.EventTime.IdleTimeout != 0 {
		t.Errorf("explicit idle_timeout 0 overwritten")
	}
	if j.Pipeline[0].OnError.Action != OnErrorSkip || j.Pipeline[1].OnError.Action != OnErrorDeadLetter || j.Pipeline[1].OnError.Topic != "dlq" {
		t.Errorf("on_error: %+v %+v", j.Pipeline[0].OnError, j.Pipeline[1].OnError)
	}
}

func TestKeyByMapping(t *testing.T) {
	j := mustParse(t, `
name: k
pipeline:
  - source: {datagen: {}}
  - key_by: {expr: "user.id", as: uid}
  - sink: {discard: {}}
`)
	if k := j.Pipeline[1].KeyBy; k.Expr != "user.id" || k.As != "uid" {
		t.Fatalf("%+v", k)
	}
}

func TestParseDocumentErrors(t *testing.T) {
	for _, src := range []string{"", "   \n", "# only a comment\n", "- a\n- b\n", "hello", "null", "[", "a: [1,", "\t"} {
		j, err := Parse([]byte(src))
		if err == nil || j != nil {
			t.Errorf("Parse(%q) = %v, %v; want an error", src, j, err)
			continue
		}
		if _, ok := AsErrors(err); !ok {
			t.Errorf("Parse(%q): error %T is not Errors", src, err)
		}
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	_, err := Parse([]byte(`
name: all
parallelism: 0
pipeline:
  - source: {kafka: {topic: t}}
  - filter: "status =="
  - window: {tumblng: 1m, aggregates: {n: count()}}
  - map: {x: "1"}
    filter: "true"
`))
	es, ok := AsErrors(err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"pipeline[2].window.tumblng: unknown field",
		"pipeline[0].source.kafka.brokers: required",
		"pipeline[1].filter: expression",
		"pipeline[2].window: needs tumbling or sliding",
		"pipeline[2].inputs: a window reads a key_by node",
		"pipeline[2].window: windows need event time",
		"pipeline[3]: has map and filter",
		"pipeline: needs at least one sink",
	}
	text := es.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
	if len(es) < len(want) {
		t.Errorf("got %d errors, want at least %d", len(es), len(want))
	}
}

// base is a valid spec; validation cases replace parts of it.
const base = `
name: v
pipeline:
  - name: src
    source:
      kafka: {brokers: [b:9092], topic: in}
      schema: {ip: string, ts: int, status: int, bytes: int, tags: list}
      event_time: {field: ts}
  - name: keyed
    key_by: ip
  - name: win
    window: {tumbling: 1m, aggregates: {n: count()}}
  - name: out
    sink: {stdout: {}}
`

func TestValidation(t *testing.T) {
	r := strings.NewReplacer
	cases := []struct {
		name string
		src  string
		want string // one of the errors, "path: msg" prefix
	}{
		{"ok", base, ""},
		{"name required", strings.Replace(base, "name: v\n", "", 1), "name: required"},
		{"name chars", strings.Replace(base, "name: v\n", "name: 'a b'\n", 1), "name: \"a b\": use"},
		{"node name chars", strings.Replace(base, "name: keyed", "name: a.b", 1), "pipeline[1].name: \"a.b\""},
		{"parallelism negative", strings.Replace(base, "name: v\n", "name: v\nparallelism: -1\n", 1), "parallelism: must be between 1 and max_parallelism (128), got -1"},
		{"parallelism above max", strings.Replace(base, "name: v\n", "name: v\nparallelism: 9\nmax_parallelism: 8\n", 1), "parallelism: must be between 1 and max_parallelism (8), got 9"},
		{"max parallelism", strings.Replace(base, "name: v\n", "name: v\nmax_parallelism: 100000\n", 1), "max_parallelism: must be between 1 and 32768"},
		{"node parallelism", strings.Replace(base, "name: out\n", "name: out\n    parallelism: 200\n", 1), "pipeline[3].parallelism: must be between 1 and max_parallelism"},
		{"parallelism zero", strings.Replace(base, "name: v\n", "name: v\nparallelism: 0\n", 1), "parallelism: must be at least 1, got 0"},
		{"max parallelism zero", strings.Replace(base, "name: v\n", "name: v\nmax_parallelism: 0\n", 1), "max_parallelism: must be at least 1, got 0"},
		{"node parallelism zero", strings.Replace(base, "name: out\n", "name: out\n    parallelism: 0\n", 1), "pipeline[3].parallelism: must be at least 1, got 0"},
		{"node parallelism negative", strings.Replace(base, "name: out\n", "name: out\n    parallelism: -2\n", 1), "pipeline[3].parallelism: must be between 1 and max_parallelism (128), got -2"},
		{"node parallelism huge", strings.Replace(base, "name: out\n", "name: out\n    parallelism: 9223372036854775807\n", 1), "pipeline[3].parallelism: must be between 1 and max_parallelism (128), got 9223372036854775807"},
		{"no kind", strings.Replace(base, "    sink: {stdout: {}}\n", "", 1), "pipeline[3]: needs exactly one of"},
		{"two kinds", strings.Replace(base, "key_by: ip", "key_by: ip\n    filter: 'true'", 1), "pipeline[1]: has filter and key_by"},
		{"duplicate name", strings.Replace(base, "name: out", "name: win", 1), "pipeline[3].name: \"win\" is already the name of pipeline[2]"},
		{"unknown input", strings.Replace(base, "name: out\n", "name: out\n    inputs: [nope]\n", 1), "pipeline[3].inputs[0]: no node named \"nope\""},
		{"duplicate input", strings.Replace(base, "name: out\n", "name: out\n    inputs: [win, win]\n", 1), "pipeline[3].inputs[1]: \"win\" is listed twice"},
		{"self input", strings.Replace(base, "name: out\n", "name: out\n    inputs: [out]\n", 1), "pipeline[3].inputs[0]: a node cannot read itself"},
		{"source with inputs", strings.Replace(base, "name: src\n", "name: src\n    inputs: [out]\n", 1), "pipeline[0].inputs: a source has no inputs"},
		{"first not source", "name: v\npipeline:\n  - filter: 'true'\n  - sink: {stdout: {}}\n", "pipeline[0].inputs: needs at least one input"},
		{"empty inputs", strings.Replace(base, "name: out\n", "name: out\n    inputs: []\n", 1), "pipeline[3].inputs: needs at least one input"},
		{"read a sink", "name: v\npipeline:\n  - source: {datagen: {}}\n  - sink: {stdout: {}}\n  - sink: {stdout: {}}\n", "pipeline[2].inputs[0]: \"sink-1\" is a sink"},
		{"cycle", `
name: v
pipeline:
  - source: {datagen: {}}
  - {name: a, inputs: [source-0, b], union: {}}
  - {name: b, filter: "true"}
  - sink: {stdout: {}}
`, "pipeline[1].inputs: node \"a\" is part of a cycle"},
		{"unknown tag", strings.Replace(base, "name: out\n", "name: out\n    inputs: [win.early]\n", 1), "pipeline[3].inputs[0]: unknown side output \"win.early\""},
		{"tag on non-window", strings.Replace(base, "name: out\n", "name: out\n    inputs: [keyed.late]\n", 1), "pipeline[3].inputs[0]: unknown side output \"keyed.late\""},
		{"late not side output", strings.Replace(base, "name: out\n", "name: out\n    inputs: [win.late]\n", 1), "pipeline[3].inputs[0]: window \"win\" has no late side output"},
		{"late side output ok", r("name: out\n", "name: out\n    inputs: [win, win.late]\n", "aggregates:", "late: side_output, aggregates:").Replace(base), ""},
		{"key named window_end after a window", strings.Replace(base, "  - name: out\n", "  - {name: k2, key_by: window_end}\n  - {name: w2, window: {tumbling: 5m, aggregates: {total: sum(n)}}}\n  - name: out\n", 1),
			"pipeline[4].window: the key field \"window_end\" (the as of key_by \"k2\") clashes with the window's own window_end field"},
		{"key as window_start", strings.Replace(base, "key_by: ip", "key_by: {expr: ip, as: window_start}", 1),
			"pipeline[2].window: the key field \"window_start\" (the as of key_by \"keyed\") clashes"},
		{"key of a window's end renamed", strings.Replace(base, "  - name: out\n", "  - {name: k2, key_by: {expr: window_end, as: end}}\n  - {name: w2, window: {tumbling: 5m, aggregates: {total: sum(n)}}}\n  - name: out\n", 1), ""},
		{"window time", strings.Replace(base, "tumbling: 1m,", "tumbling: 1m, time: wall,", 1), "pipeline[2].window.time: want event or processing, got \"wall\""},
		{"processing-time sliding", strings.Replace(base, "tumbling: 1m,", "sliding: {size: 1m, slide: 10s}, time: processing,", 1), "pipeline[2].window.sliding: processing-time windows are tumbling only"},
		{"processing-time lateness", strings.Replace(base, "tumbling: 1m,", "tumbling: 1m, time: processing, allowed_lateness: 5s,", 1), "pipeline[2].window.allowed_lateness: processing-time windows have no lateness"},
		{"processing-time late side output", strings.Replace(base, "tumbling: 1m,", "tumbling: 1m, time: processing, late: side_output,", 1), "pipeline[2].window.late: processing-time windows have no late records"},
		{"processing time needs no event_time", r("      event_time: {field: ts}\n", "", "tumbling: 1m,", "tumbling: 1m, time: processing,").Replace(base), ""},
		{"window input not key_by", strings.Replace(base, "name: win\n", "name: win\n    inputs: [src]\n", 1), "pipeline[2].inputs: a window reads a key_by node; \"src\" is a source"},
		{"window two inputs", strings.Replace(base, "name: win\n", "name: win\n    inputs: [keyed, src]\n", 1), "pipeline[2].inputs: a window reads exactly one key_by node, got 2"},
		{"window both shapes", strings.Replace(base, "tumbling: 1m", "tumbling: 1m, sliding: {size: 1m, slide: 10s}", 1), "pipeline[2].window: has tumbling and sliding"},
		{"window no shape", strings.Replace(base, "tumbling: 1m, ", "", 1), "pipeline[2].window: needs tumbling or sliding"},
		{"window negative", strings.Replace(base, "tumbling: 1m", "tumbling: -1m", 1), "pipeline[2].window.tumbling: must be > 0"},
		{"sliding ok", strings.Replace(base, "tumbling: 1m", "sliding: {size: 1m, slide: 10s}", 1), ""},
		{"slide > size", strings.Replace(base, "tumbling: 1m", "sliding: {size: 1m, slide: 2m}", 1), "pipeline[2].window.sliding.slide: must not exceed size"},
		{"session ok", strings.Replace(base, "tumbling: 1m", "session: {gap: 30m}, allowed_lateness: 1m, late: side_output", 1), ""},
		{"session gap zero", strings.Replace(base, "tumbling: 1m", "session: {}", 1), "pipeline[2].window.session.gap: must be > 0"},
		{"session gap negative", strings.Replace(base, "tumbling: 1m", "session: {gap: -5s}", 1), "pipeline[2].window.session.gap: must be > 0"},
		{"session gap below 1ms", strings.Replace(base, "tumbling: 1m", "session: {gap: 10us}", 1), "pipeline[2].window.session.gap: must be at least 1ms"},
		{"session and tumbling", strings.Replace(base, "tumbling: 1m", "tumbling: 1m, session: {gap: 1m}", 1), "pipeline[2].window: has tumbling and session; set exactly one"},
		{"session processing time", strings.Replace(base, "tumbling: 1m", "session: {gap: 1m}, time: processing", 1), "pipeline[2].window.session: session windows follow event time"},
		{"session gap unknown field", strings.Replace(base, "tumbling: 1m", "session: {gaps: 1m}", 1), "pipeline[2].window.session.gaps: unknown field"},
		{"slide zero", strings.Replace(base, "tumbling: 1m", "sliding: {size: 1m}", 1), "pipeline[2].window.sliding.slide: must be > 0"},
		{"size zero", strings.Replace(base, "tumbling: 1m", "sliding: {slide: 1s}", 1), "pipeline[2].window.sliding.size: must be > 0"},
		{"lateness negative", strings.Replace(base, "tumbling: 1m", "tumbling: 1m, allowed_lateness: -1s", 1), "pipeline[2].window.allowed_lateness: must be >= 0"},
		{"late value", strings.Replace(base, "tumbling: 1m", "tumbling: 1m, late: keep", 1), "pipeline[2].window.late: want drop or side_output, got \"keep\""},
		{"no event time", strings.Replace(base, "      event_time: {field: ts}\n", "", 1), "pipeline[2].window: windows need event time: source \"src\" has no event_time"},
		{"no aggregates", strings.Replace(base, "aggregates: {n: count()}", "aggregates: {}", 1), "pipeline[2].window.aggregates: needs at least one aggregate"},
		{"bad aggregate", strings.Replace(base, "n: count()", "n: median(bytes)", 1), "pipeline[2].window.aggregates.n: aggregate \"median(bytes)\": unknown function \"median\""},
		{"aggregate arg", strings.Replace(base, "n: count()", "n: sum(nope)", 1), "pipeline[2].window.aggregates.n: expression \"nope\""},
		{"aggregate clash", strings.Replace(base, "n: count()", "window_end: count()", 1), "pipeline[2].window.aggregates.window_end: clashes"},
		{"no sink", strings.Replace(base, "    sink: {stdout: {}}\n", "    union: {}\n", 1), "pipeline: needs at least one sink"},
		{"kafka source brokers", strings.Replace(base, "brokers: [b:9092], ", "", 1), "pipeline[0].source.kafka.brokers: required"},
		{"kafka source topic", strings.Replace(base, ", topic: in", "", 1), "pipeline[0].source.kafka.topic: required"},
		{"kafka source format", strings.Replace(base, "topic: in", "topic: in, format: avro", 1), "pipeline[0].source.kafka.schema_registry: required with format avro"},
		{"kafka start_from", strings.Replace(base, "topic: in", "topic: in, start_from: middle", 1), "pipeline[0].source.kafka.start_from: want earliest or latest"},
		{"kafka isolation", strings.Replace(base, "topic: in", "topic: in, isolation: dirty", 1), "pipeline[0].source.kafka.isolation: want read_committed or read_uncommitted"},
		{"source connector", strings.Replace(base, "kafka: {brokers: [b:9092], topic: in}", "schema2: 1", 1), "pipeline[0].source.schema2: unknown field"},
		{"source two connectors", strings.Replace(base, "topic: in}", "topic: in}\n      datagen: {}", 1), "pipeline[0].source: has kafka and datagen"},
		{"schema type", strings.Replace(base, "ip: string", "ip: text", 1), "pipeline[0].source.schema.ip: want string, int"},
		{"event time field", strings.Replace(base, "{field: ts}", "{max_out_of_orderness: 1s}", 1), "pipeline[0].source.event_time.field: required"},
		{"kafka sink", strings.Replace(base, "sink: {stdout: {}}", "sink: {kafka: {format: xml}}", 1), "pipeline[3].sink.kafka.brokers: required"},
		{"kafka sink topic", strings.Replace(base, "sink: {stdout: {}}", "sink: {kafka: {brokers: [b:1]}}", 1), "pipeline[3].sink.kafka.topic: required"},
		{"kafka sink format", strings.Replace(base, "sink: {stdout: {}}", "sink: {kafka: {brokers: [b:1], topic: o, format: xml}}", 1), "pipeline[3].sink.kafka.format: want json, raw, avro, protobuf or json_schema"},
		{"exactly once", strings.Replace(base, "sink: {stdout: {}}", "sink: {kafka: {brokers: [b:1], topic: o, delivery: exactly-once}}", 1), "pipeline[3].sink.kafka.delivery: exactly-once commits a transaction when a checkpoint completes: add a checkpoint block"},
		{"delivery", strings.Replace(base, "sink: {stdout: {}}", "sink: {kafka: {brokers: [b:1], topic: o, delivery: maybe}}", 1), "pipeline[3].sink.kafka.delivery: want at-least-once or exactly-once, got \"maybe\""},
		{"sink key expr", strings.Replace(base, "sink: {stdout: {}}", "sink: {kafka: {brokers: [b:1], topic: o, key: 'nope +'}}", 1), "pipeline[3].sink.kafka.key: expression"},
		{"sink no connector", strings.Replace(base, "sink: {stdout: {}}", "sink: {}", 1), "pipeline[3].sink: needs a connector"},
		{"sink two connectors", strings.Replace(base, "sink: {stdout: {}}", "sink: {stdout: {}, discard: {}}", 1), "pipeline[3].sink: has stdout and discard"},
		{"file path", strings.Replace(base, "sink: {stdout: {}}", "sink: {file: {}}", 1), "pipeline[3].sink.file.path: required"},
		{"stdout format", strings.Replace(base, "sink: {stdout: {}}", "sink: {stdout: {format: csv}}", 1), "pipeline[3].sink.stdout.format: want json or raw"},
		{"dead letter topic", strings.Replace(base, "name: v\n", "name: v\non_error: dead_letter\n", 1), "on_error.topic: required for dead_letter"},
		{"dead letter brokers", strings.Replace(base, "name: out\n", "name: out\n    on_error: {action: dead_letter, topic: d}\n", 1), "pipeline[3].on_error.brokers: required"},
		{"on_error action", strings.Replace(base, "name: v\n", "name: v\non_error: retry\n", 1), "on_error.action: want fail, skip or dead_letter, got \"retry\""},
		{"on_error topic without dead letter", strings.Replace(base, "name: v\n", "name: v\non_error: {action: skip, topic: x}\n", 1), "on_error: topic, brokers, tls and sasl are only for action dead_letter"},
		{"flat_map none", strings.Replace(base, "name: out\n", "name: fm\n    inputs: [src]\n    flat_map: {as: x}\n  - name: out\n", 1), "pipeline[3].flat_map: needs exactly one of explode or split"},
		{"flat_map both", strings.Replace(base, "name: out\n", "name: fm\n    inputs: [src]\n    flat_map: {explode: tags, split: ip}\n  - name: out\n", 1), "pipeline[3].flat_map: needs exactly one of explode or split"},
		{"flat_map separator", strings.Replace(base, "name: out\n", "name: fm\n    inputs: [src]\n    flat_map: {explode: tags, separator: ','}\n  - name: out\n", 1), "pipeline[3].flat_map.separator: only for split"},
		{"partition value", strings.Replace(base, "name: out\n", "name: out\n    partition: random\n", 1), "pipeline[3].partition: want rebalance or broadcast, got \"random\""},
		{"partition after key_by", strings.Replace(base, "name: win\n", "name: win\n    partition: rebalance\n", 1), "pipeline[2].partition: cannot be set on a node that reads key_by"},
		{"datagen profile", "name: v\npipeline:\n  - source: {datagen: {profile: weather}}\n  - sink: {stdout: {}}\n", "pipeline[0].source.datagen.profile: want access-log, sequence or nexmark"},
		{"datagen count", "name: v\npipeline:\n  - source: {datagen: {count: -1, rate: -2}}\n  - sink: {stdout: {}}\n", "pipeline[0].source.datagen.count: must be >= 0"},
		{"datagen rate", "name: v\npipeline:\n  - source: {datagen: {count: -1, rate: -2}}\n  - sink: {stdout: {}}\n", "pipeline[0].source.datagen.rate: must be >= 0"},
		{"filter type", strings.Replace(base, "name: out\n", "name: f\n    inputs: [src]\n    filter: ip\n  - name: out\n", 1), "pipeline[3].filter: expression \"ip\""},
		{"filter unknown field", strings.Replace(base, "name: out\n", "name: f\n    inputs: [src]\n    filter: nope > 1\n  - name: out\n", 1), "pipeline[3].filter: expression \"nope > 1\""},
		{"key_by unknown field", strings.Replace(base, "key_by: ip", "key_by: nope", 1), "pipeline[1].key_by.expr: expression \"nope\""},
		{"type error", strings.Replace(base, "name: out\n", "name: f\n    inputs: [src]\n    filter: ip > 3\n  - name: out\n", 1), "pipeline[3].filter: expression \"ip > 3\""},
		{"duration type", strings.Replace(base, "tumbling: 1m", "tumbling: abc", 1), "pipeline[2].window.tumbling: want a duration such as 5s or 1m, got \"abc\""},
		{"int type", strings.Replace(base, "name: v\n", "name: v\nparallelism: two\n", 1), "parallelism: want an integer, got \"two\""},
		{"duplicate key", strings.Replace(base, "name: v\n", "name: v\nname: w\n", 1), "name: defined more than once"},
		{"pipeline not list", "name: v\npipeline: {a: 1}\n", "pipeline: want a list, got a mapping"},
		{"empty pipeline", "name: v\npipeline: []\n", "pipeline: needs at least one node"},
		{"unknown top field", strings.Replace(base, "name: v\n", "name: v\nparalelism: 2\n", 1), "paralelism: unknown field"},
		{"map field null", strings.Replace(base, "name: out\n", "name: m\n    inputs: [src]\n    map: {a: }\n  - name: out\n", 1), "pipeline[3].map.a: want an expression, got null"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src))
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				return
			}
			es, ok := AsErrors(err)
			if !ok {
				t.Fatalf("want Errors containing %q, got %v", c.want, err)
			}
			for _, e := range es {
				if strings.HasPrefix(e.Error(), c.want) {
					return
				}
			}
			t.Fatalf("want an error starting %q, got:\n%v", c.want, err)
		})
	}
}

func TestSchemaPropagation(t *testing.T) {
	ok := func(src string) {
		t.Helper()
		if _, err := Parse([]byte(src)); err != nil {
			t.Errorf("unexpected error: %v", err)
		}
	}
	bad := func(src, want string) {
		t.Helper()
		_, err := Parse([]byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error %q, got %v", want, err)
		}
	}
	head := "name: s\npipeline:\n  - {name: src, source: {datagen: {}, schema: {a: int, b: string, ts: int}, event_time: {field: ts}}}\n"
	tail := "  - sink: {stdout: {}}\n"
	// map adds fields, keeps the others.
	ok(head + "  - map: {c: a + 1}\n  - filter: c != nil && b != ''\n" + tail)
	// fields of type any accept any use, but unknown names are still errors.
	ok(head + "  - map: {c: a + 1}\n  - filter: c > 5 && len(c) > 0 && upper(b) != ''\n" + tail)
	bad(head+"  - map: {c: a + 1}\n  - filter: c > 5 && nope\n"+tail, "pipeline[2].filter: expression \"c > 5 && nope\": unknown name nope")
	bad(head+"  - map: {c: a + 1}\n  - filter: b > 5\n"+tail, "pipeline[2].filter")
	// select replaces the schema.
	bad(head+"  - select: {x: a}\n  - filter: b == ''\n"+tail, "pipeline[2].filter")
	ok(head + "  - select: {x: a}\n  - filter: x != nil\n" + tail)
	// key_by keeps it; window output is key, window_start, window_end and aggregates.
	ok(head + "  - key_by: b\n  - window: {tumbling: 1s, aggregates: {n: count(), s: sum(a)}}\n  - filter: b != '' && window_start < window_end && n > 0 && s != nil\n" + tail)
	bad(head+"  - key_by: b\n  - window: {tumbling: 1s, aggregates: {n: count()}}\n  - filter: a > 1\n"+tail, "pipeline[3].filter")
	// key_by.as names the key in the window output.
	ok(head + "  - key_by: {expr: upper(b), as: k}\n  - window: {tumbling: 1s, aggregates: {n: count()}}\n  - filter: k != ''\n" + tail)
	// union of differing schemas is unknown: anything compiles.
	ok(head + "  - {name: s2, source: {datagen: {}, schema: {z: int}}}\n  - {inputs: [src, s2], union: {}}\n  - filter: whatever > 1\n" + tail)
	// union of equal schemas keeps it.
	bad(head+"  - {name: s2, source: {datagen: {}, schema: {a: int, b: string, ts: int}}}\n  - {inputs: [src, s2], union: {}}\n  - filter: whatever > 1\n"+tail, "pipeline[3].filter")
	// late side output has the window's input schema.
	bad(head+"  - key_by: b\n  - {name: w, window: {tumbling: 1s, late: side_output, aggregates: {n: count()}}}\n  - sink: {discard: {}}\n  - {inputs: [w.late], filter: n > 0}\n"+tail, "pipeline[4].filter")
	// no schema: anything goes.
	ok("name: s\npipeline:\n  - source: {datagen: {}}\n  - filter: anything > 1\n" + tail)
	// event time field checked against the source schema.
	bad("name: s\npipeline:\n  - source: {datagen: {}, schema: {a: int}, event_time: {field: ts}}\n"+tail, "pipeline[0].source.event_time.field")
}

func TestParseAggregate(t *testing.T) {
	for _, c := range []struct{ in, fn, arg string }{
		{"count()", "count", ""}, {" sum( bytes ) ", "sum", "bytes"}, {"min(a.b)", "min", "a.b"},
		{"max(len(x))", "max", "len(x)"}, {"avg(a * (b + 1))", "avg", "a * (b + 1)"},
	} {
		fn, arg, err := ParseAggregate(c.in)
		if err != nil || fn != c.fn || arg != c.arg {
			t.Errorf("ParseAggregate(%q) = %q, %q, %v", c.in, fn, arg, err)
		}
	}
	for _, in := range []string{"", "count", "count(x)", "sum()", "median(x)", "sum(x", "(x)"} {
		if _, _, err := ParseAggregate(in); err == nil {
			t.Errorf("ParseAggregate(%q): want an error", in)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, c := range []struct{ in, out string }{
		{"x: ${A}", "x: alpha"},
		{"x: ${B:-bee}", "x: bee"},
		{"x: ${A:-bee}", "x: alpha"},
		{"x: ${EMPTY:-d}", "x: d"},
		{"x: ${EMPTY}", "x: "},
		{"x: ${B:-}", "x: "},
		{"x: ${B:-127.0.0.1:9092}", "x: 127.0.0.1:9092"},
		{"x: $$A $${A} $A $", "x: $A ${A} $A $"},
		{"no vars", "no vars"},
	} {
		got, err := ExpandEnv([]byte(c.in), lookup)
		if err != nil || string(got) != c.out {
			t.Errorf("ExpandEnv(%q) = %q, %v; want %q", c.in, got, err, c.out)
		}
	}
	_, err := ExpandEnv([]byte("a: 1\nb: ${NOPE}\nc: ${ALSO_NOPE}\n"), lookup)
	if err == nil || !strings.Contains(err.Error(), "line 2: environment variable NOPE is not set") || !strings.Contains(err.Error(), "line 3: environment variable ALSO_NOPE") {
		t.Errorf("unset: %v", err)
	}
	for _, in := range []string{"x: ${A", "x: ${}", "x: ${1A}", "x: ${A B}", "x: ${A\n}"} {
		if _, err := ExpandEnv([]byte(in), lookup); err == nil {
			t.Errorf("ExpandEnv(%q): want an error", in)
		}
	}
}

func TestMisc(t *testing.T) {
	j := mustParse(t, base)
	if j.Node("nope") != nil || j.Upstream("nope") != nil {
		t.Error("unknown node")
	}
	if d := j.Downstream("keyed", ""); len(d) != 1 || d[0].Name != "win" {
		t.Errorf("Downstream = %v", d)
	}
	if n, tag := ParseInput("win.late"); n != "win" || tag != "late" {
		t.Error("ParseInput")
	}
	if (&Node{}).Kind() != "" {
		t.Error("empty kind")
	}
	// Validate on a parsed job is clean; breaking it is reported.
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	j.Pipeline[2].Window.Aggregates = nil
	if err := j.Validate(); err == nil {
		t.Error("Validate: want an error")
	}
}

func TestAliasBomb(t *testing.T) {
	src := `
a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
name: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
pipeline: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
`
	if _, err := Parse([]byte(src)); err == nil {
		t.Fatal("want an error")
	}
}

func TestMergeKeys(t *testing.T) {
	j := mustParse(t, `
name: m
pipeline:
  - source: {datagen: {}}
  - name: a
    sink: {kafka: &k {brokers: [b:1], topic: one}}
  - name: b
    inputs: [source-0]
    sink: {kafka: {<<: *k, topic: two}}
`)
	if k := j.Node("b").Sink.Kafka; k.Topic != "two" || len(k.Brokers) != 1 {
		t.Fatalf("%+v", k)
	}
}

func TestMultipleDocuments(t *testing.T) {
	_, err := Parse([]byte(base + "---\nname: other\n"))
	if err == nil || !strings.Contains(err.Error(), "single YAML document") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse([]byte("---\n" + base)); err != nil {
		t.Fatalf("leading ---: %v", err)
	}
}

func TestOddFieldNames(t *testing.T) {
	mustParse(t, "name: s\npipeline:\n  - {source: {datagen: {}, schema: {a: int}}}\n  - map: {'x\"y': a, 'user-agent': '1'}\n  - filter: a > 1\n  - sink: {stdout: {}}\n")
}

func TestYAMLRoundTrip(t *testing.T) {
	data, err := ExpandEnv(loadExample(t, "ip-visits.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{string(data), base, strings.Replace(base, "tumbling: 1m", "sliding: {size: 1m, slide: 10s}, late: side_output", 1) + "  - {inputs: [win.late], sink: {file: {path: /tmp/x}}}\n"} {
		j := mustParse(t, src)
		out, err := yaml.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		j2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(j, j2) {
			t.Fatalf("round trip differs:\n%s", out)
		}
	}
}
