package spec

import (
	"reflect"
	"strings"
	"testing"
)

const joinSpec = `
name: j
pipeline:
  - name: bids
    source:
      datagen: {profile: sequence, count: 10}
      schema: {id: int, ts: int, price: float}
      event_time: {field: ts}
  - name: auctions
    source:
      datagen: {profile: sequence, count: 10}
      schema: {id: int, ts: int, seller: string}
      event_time: {field: ts}
  - {name: bids_by_id, inputs: [bids], key_by: id}
  - {name: auctions_by_id, inputs: [auctions], key_by: id}
  - name: joined
    join:
      left: bids_by_id
      right: auctions_by_id
      type: left
      interval: {lower: 10s, upper: 1m}
      right_prefix: a_
  - filter: "a_seller == nil || price > 1.5"
  - sink: {stdout: {}}
`

func TestParseJoin(t *testing.T) {
	j, err := Parse([]byte(joinSpec))
	if err != nil {
		t.Fatal(err)
	}
	n := j.Node("joined")
	if n.Kind() != KindJoin {
		t.Fatalf("kind %q", n.Kind())
	}
	if !reflect.DeepEqual(n.Inputs, []string{"bids_by_id", "auctions_by_id"}) {
		t.Fatalf("inputs %v: want left then right", n.Inputs)
	}
	if n.Join.Type != JoinLeft || n.Join.Interval.Lower.D().Seconds() != 10 || n.Join.Interval.Upper.D().Minutes() != 1 {
		t.Fatalf("join %+v", n.Join)
	}
	// id is the key of both sides: the output has it once, from the left.
	if got, want := n.Join.RightFields(), []string{"seller", "ts"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("right fields %v, want %v", got, want)
	}
	if n.Join.Using() != "id" {
		t.Fatalf("using %q, want id", n.Join.Using())
	}
	// The default type is inner.
	j, err = Parse([]byte(strings.Replace(joinSpec, "      type: left\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Node("joined").Join.Type; got != JoinInner {
		t.Fatalf("default type %q", got)
	}
}

func TestJoinErrors(t *testing.T) {
	src := `
name: j
pipeline:
  - {name: a, source: {datagen: {profile: sequence}, schema: {id: int, ts: int, x: string}, event_time: {field: ts}}}
  - {name: b, source: {datagen: {profile: sequence}, schema: {id: int, ts: int, s: string}, event_time: {field: ts}}}
  - {name: ka, inputs: [a], key_by: id}
  - {name: kb, inputs: [b], key_by: id}
  - name: j
    JOIN
  - sink: {stdout: {}}
`
	for _, c := range []struct{ join, want string }{
		{`join: {left: ka, right: b, interval: {upper: 1s}}`, `pipeline[4].join.right: a join reads key_by nodes (records meet by key); "b" is a source`},
		{`join: {left: ka, right: nope, interval: {upper: 1s}}`, `pipeline[4].join.right: no node named "nope"`},
		{`join: {right: kb, interval: {upper: 1s}}`, `pipeline[4].join.left: required`},
		{`join: {left: ka, right: ka, interval: {upper: 1s}}`, `pipeline[4].join.right: "ka" is also the left input`},
		{`join: {left: ka, right: kb}`, `pipeline[4].join: needs interval`},
		{`join: {left: ka, right: kb, interval: {upper: 1s}, window: {tumbling: 1m}}`, `pipeline[4].join: has interval and window`},
		{`join: {left: ka, right: kb, interval: {lower: -2s, upper: 1s}}`, `pipeline[4].join.interval: is empty`},
		{`join: {left: ka, right: kb, type: full, interval: {upper: 1s}}`, `pipeline[4].join.type: want inner or left, got "full"`},
		{`join: {left: ka, right: kb, window: {sliding: {size: 1m, slide: 2m}}}`, `pipeline[4].join.window.sliding.slide: must not exceed size`},
		{`join: {left: ka, right: kb, window: {session: {gap: 0s}}, right_prefix: r_}`, `pipeline[4].join.window.session.gap: must be at least 1ms`},
		{`join: {left: ka, right: kb, window: {tumbling: 1s, session: {gap: 1s}}, right_prefix: r_}`, `pipeline[4].join.window: has tumbling and session; set exactly one`},
		{`join: {left: ka, right: kb, window: {}}`, `pipeline[4].join.window: needs tumbling, sliding or session`},
		{`join: {left: ka, right: kb, interval: {upper: 1s}, left_prefix: "a-"}`, `pipeline[4].join.left_prefix: "a-": want letters`},
		// Both sides have ts: without a prefix the output names clash (the
		// key field id both key_by nodes name is there once).
		{`join: {left: ka, right: kb, interval: {upper: 1s}}`, `pipeline[4].join: both inputs have a field "ts": set left_prefix or right_prefix`},
		{`{inputs: [kb, ka], join: {left: ka, right: kb, interval: {upper: 1s}, right_prefix: r_}}`, `pipeline[4].inputs: a join reads join.left and join.right: leave inputs out`},
	} {
		spec := strings.Replace(src, "JOIN", c.join, 1)
		if strings.HasPrefix(c.join, "{") {
			spec = strings.Replace(src, "- name: j\n    JOIN", "- "+c.join[:len(c.join)-1]+", name: j}", 1)
		}
		_, err := Parse([]byte(spec))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.join, err, c.want)
		}
	}
}

// Keys of different types never meet: the join is refused at submit when
// both schemas say so, with the path of the right input.
func TestJoinKeyTypes(t *testing.T) {
	src := `
name: j
pipeline:
  - {name: a, source: {datagen: {profile: sequence}, schema: {id: int, ts: int}, event_time: {field: ts}}}
  - {name: b, source: {datagen: {profile: sequence}, schema: {name: string, ts: int}, event_time: {field: ts}}}
  - {name: ka, inputs: [a], key_by: id}
  - {name: kb, inputs: [b], key_by: name}
  - {name: j, join: {left: ka, right: kb, window: {tumbling: 1m}, right_prefix: r_}}
  - sink: {stdout: {}}
`
	_, err := Parse([]byte(src))
	want := `pipeline[4].join.right: key_by "kb" gives string keys but the left input "ka" gives int keys`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %s", err, want)
	}
	// Without event time on a source the join cannot run.
	src2 := strings.Replace(src, "schema: {name: string, ts: int}, event_time: {field: ts}", "schema: {name: int, ts: int}", 1)
	_, err = Parse([]byte(src2))
	want = `pipeline[4].join: interval and windowed joins need event time: source "b" has no event_time`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// A lookup join needs no event time; its right side is typically an upsert
// Kafka source, whose key field and deleted marker are in its schema.
func TestLookupJoinSpec(t *testing.T) {
	src := `
name: j
pipeline:
  - {name: users, source: {kafka: {brokers: [b:9092], topic: users, upsert: true, key_field: user}, schema: {name: string}}}
  - {name: orders, source: {kafka: {brokers: [b:9092], topic: orders}, schema: {user: string, n: int}}}
  - {name: ku, inputs: [users], key_by: user}
  - {name: ko, inputs: [orders], key_by: user}
  - {name: j, join: {left: ko, right: ku, type: left, lookup: {}}}
  - filter: "name == nil || n > 1"
  - sink: {stdout: {}}
`
	j, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	jn := j.Node("j").Join
	if got := jn.RightFields(); !reflect.DeepEqual(got, []string{"name"}) || jn.Using() != "user" {
		t.Fatalf("right fields %v, using %q: want [name] and user (no %s)", got, jn.Using(), DeletedField)
	}
	if k := j.Node("users").Source.Kafka; k.KeyField != "user" {
		t.Fatalf("key field %q", k.KeyField)
	}
	for _, c := range []struct{ from, to, want string }{
		{"lookup: {}", "lookup: {}, interval: {upper: 1s}", "pipeline[4].join: has interval and lookup; set exactly one"},
		{"topic: orders}", "topic: orders, key_field: k}", "pipeline[1].source.kafka.key_field: only with upsert: true"},
		{"key_field: user}", "key_field: \"a b\"}", `pipeline[0].source.kafka.key_field: want a field name, got "a b"`},
		{"lookup: {}", "window: {tumbling: 1s}", `pipeline[4].join: interval and windowed joins need event time: source "orders" has no event_time`},
	} {
		_, err := Parse([]byte(strings.Replace(src, c.from, c.to, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.to, err, c.want)
		}
	}
	// Upsert defaults the key field to key.
	j, err = Parse([]byte(strings.Replace(strings.Replace(src, ", key_field: user", "", 1), "key_by: user}\n  - {name: ko", "key_by: key}\n  - {name: ko", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if k := j.Node("users").Source.Kafka; k.KeyField != DefaultUpsertKeyField {
		t.Fatalf("default key field %q", k.KeyField)
	}
}

// A windowed join's results carry window_start and window_end: an input
// field that would take one of those names is refused at submit.
func TestWindowJoinFieldsClash(t *testing.T) {
	src := `
name: j
pipeline:
  - {name: a, source: {datagen: {profile: sequence}, schema: {id: int, ts: int, start: int}, event_time: {field: ts}}}
  - {name: b, source: {datagen: {profile: sequence}, schema: {id: int, ts: int, window_end: int}, event_time: {field: ts}}}
  - {name: ka, inputs: [a], key_by: id}
  - {name: kb, inputs: [b], key_by: id}
  - {name: j, join: {left: ka, right: kb, window: {tumbling: 1s}, left_prefix: window_, right_prefix: r_}}
  - sink: {stdout: {}}
`
	_, err := Parse([]byte(src))
	want := `pipeline[4].join: the left input has a field "window_start", which a windowed join's results carry: set left_prefix`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %s", err, want)
	}
	_, err = Parse([]byte(strings.Replace(strings.Replace(src, "left_prefix: window_", "left_prefix: l_", 1), "right_prefix: r_", "right_prefix: \"\"", 1)))
	want = `pipeline[4].join: the right input has a field "window_end", which a windowed join's results carry: set right_prefix`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %s", err, want)
	}
	// An interval join carries no window fields.
	if _, err := Parse([]byte(strings.Replace(src, "window: {tumbling: 1s}", "interval: {upper: 1s}", 1))); err != nil {
		t.Fatal(err)
	}
}
