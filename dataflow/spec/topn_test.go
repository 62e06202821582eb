package spec

import (
	"strings"
	"testing"
)

// The top auction by bids per minute, Nexmark q5's shape: a window of
// counts, keyed by its window_end, ranked.
const topNSpec = `
name: t
pipeline:
  - source: {datagen: {profile: nexmark}, event_time: {field: date_time}}
  - filter: event_type == "bid"
  - key_by: auction
  - window: {tumbling: 1m, aggregates: {bids: count()}}
  - key_by: window_end
  - name: hot
    top_n: {n: 3, order_by: bids DESC, late: side_output}
  - filter: rank <= 3 && auction > 0
  - sink: {stdout: {}}
  - inputs: [hot.late]
    sink: {discard: {}}
`

func TestParseTopN(t *testing.T) {
	j, err := Parse([]byte(topNSpec))
	if err != nil {
		t.Fatal(err)
	}
	tn := j.Node("hot").TopN
	if j.Node("hot").Kind() != KindTopN || tn.N != 3 || tn.RankAs != "rank" || tn.Late != "side_output" {
		t.Fatalf("top_n %+v", tn)
	}
	if e, desc := ParseOrderBy(tn.OrderBy); e != "bids" || !desc {
		t.Fatalf("order_by %q: %q desc=%v", tn.OrderBy, e, desc)
	}
}

func TestParseOrderBy(t *testing.T) {
	for _, c := range []struct {
		in   string
		e    string
		desc bool
	}{
		{"price", "price", false},
		{"price DESC", "price", true},
		{" price * 2  asc ", "price * 2", false},
		{"desc", "desc", false},
		{"a Desc", "a", true},
	} {
		if e, desc := ParseOrderBy(c.in); e != c.e || desc != c.desc {
			t.Errorf("%q: %q %v, want %q %v", c.in, e, desc, c.e, c.desc)
		}
	}
}

func TestTopNErrors(t *testing.T) {
	const src = "  - source: {datagen: {profile: sequence}, event_time: {field: ts}, schema: {id: int, ts: int}}\n  - key_by: id\n"
	for _, c := range []struct{ pipeline, want string }{
		{src + `  - top_n: {order_by: id, tumbling: 1m}
  - sink: {stdout: {}}`, `pipeline[2].top_n.n: must be between 1 and 10000, got 0`},
		{src + `  - top_n: {n: 2, tumbling: 1m}
  - sink: {stdout: {}}`, `pipeline[2].top_n.order_by: required`},
		{src + `  - top_n: {n: 2, order_by: nope DESC, tumbling: 1m}
  - sink: {stdout: {}}`, `pipeline[2].top_n.order_by: `},
		{src + `  - top_n: {n: 2, order_by: id}
  - sink: {stdout: {}}`, `pipeline[2].top_n: without tumbling, top_n ranks a window's results`},
		{src + `  - top_n: {n: 2, order_by: id, tumbling: 1m, rank_as: "2x"}
  - sink: {stdout: {}}`, `pipeline[2].top_n.rank_as: want a field name`},
		{src + `  - top_n: {n: 2, order_by: id, tumbling: 1m}
  - filter: nope > 1
  - sink: {stdout: {}}`, `pipeline[3].filter: `},
		{"  - source: {datagen: {profile: sequence}}\n  - key_by: id\n" + `  - top_n: {n: 2, order_by: id, tumbling: 1m}
  - sink: {stdout: {}}`, `pipeline[2].top_n: top_n needs event time`},
		{src + `  - {name: t, top_n: {n: 2, order_by: id, tumbling: 1m}}
  - {inputs: [t.late], sink: {stdout: {}}}`, `pipeline[3].inputs[0]: top_n "t" has no late side output`},
	} {
		_, err := Parse([]byte("name: p\npipeline:\n" + c.pipeline + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	// Its output has window_start, window_end and rank.
	_, err := Parse([]byte("name: p\npipeline:\n" + src + `  - top_n: {n: 2, order_by: id, tumbling: 1m}
  - filter: rank == 1 && window_end > window_start && ts > 0
  - sink: {stdout: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
}
