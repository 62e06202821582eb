package spec

import (
	"strings"
	"testing"
	"time"
)

const dedupSpec = `
name: d
pipeline:
  - source: {datagen: {profile: sequence, count: 10}, event_time: {field: ts}}
  - key_by: id
  - name: once
    dedup: {within: 10m, late: side_output}
  - inputs: [once.late]
    sink: {stdout: {}}
  - inputs: [once]
    sink: {discard: {}}
`

func TestParseDedup(t *testing.T) {
	j, err := Parse([]byte(dedupSpec))
	if err != nil {
		t.Fatal(err)
	}
	n := j.Node("once")
	if n.Kind() != KindDedup || n.Dedup.Within.D() != 10*time.Minute || n.Dedup.Late != "side_output" {
		t.Fatalf("node %+v", n.Dedup)
	}
	j, err = Parse([]byte(strings.Replace(dedupSpec, ", late: side_output", "", 1)))
	if err == nil || !strings.Contains(err.Error(), `pipeline[3].inputs[0]: dedup "once" has no late side output`) {
		t.Fatalf("late side output without late: side_output: %v", err)
	}
	_ = j
}

func TestDedupErrors(t *testing.T) {
	const src = "  - source: {datagen: {profile: sequence}, event_time: {field: ts}}\n"
	for _, c := range []struct{ pipeline, want string }{
		{src + `  - key_by: id
  - dedup: {}
  - sink: {stdout: {}}`, `pipeline[2].dedup.within: required`},
		{src + `  - key_by: id
  - dedup: {within: 1us}
  - sink: {stdout: {}}`, `pipeline[2].dedup.within: must be at least 1ms`},
		{src + `  - key_by: id
  - dedup: {within: 1s, late: keep}
  - sink: {stdout: {}}`, `pipeline[2].dedup.late: want drop or side_output, got "keep"`},
		{src + `  - dedup: {within: 1s}
  - sink: {stdout: {}}`, `pipeline[1].inputs: dedup reads a key_by node (it remembers each key); "source-0" is a source`},
		{`  - source: {datagen: {profile: sequence}}
  - key_by: id
  - dedup: {within: 1s}
  - sink: {stdout: {}}`, `pipeline[2].dedup: dedup needs event time: source "source-0" has no event_time`},
		{src + `  - key_by: id
  - dedup: {within: 1s, every: 2s}
  - sink: {stdout: {}}`, `pipeline[2].dedup.every`},
	} {
		_, err := Parse([]byte("name: p\npipeline:\n" + c.pipeline + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}
