package spec

import (
	"reflect"
	"strings"
	"testing"
)

const processSpec = `
name: p
pipeline:
  - source: {datagen: {count: 10}}
  - key_by: ip
  - name: dedup
    process:
      operator: acme.dedup
      config: {ttl: 10m, limits: {max: 3, ratio: 0.5}, tags: [a, 1, true, null]}
  - inputs: [dedup.dupes]
    sink: {stdout: {}}
  - inputs: [dedup]
    sink: {discard: {}}
`

func TestParseProcess(t *testing.T) {
	j, err := Parse([]byte(processSpec))
	if err != nil {
		t.Fatal(err)
	}
	p := j.Node("dedup").Process
	if p.Operator != "acme.dedup" {
		t.Fatalf("operator %q", p.Operator)
	}
	want := map[string]any{"ttl": "10m", "limits": map[string]any{"max": int64(3), "ratio": 0.5}, "tags": []any{"a", int64(1), true, nil}}
	if !reflect.DeepEqual(map[string]any(p.Config), want) {
		t.Fatalf("config %#v, want %#v", p.Config, want)
	}
	if j.Node("dedup").Kind() != KindProcess {
		t.Fatalf("kind %q", j.Node("dedup").Kind())
	}
	if got := j.ProcessNodes(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("process nodes %v", got)
	}
}

func TestProcessErrors(t *testing.T) {
	for _, c := range []struct{ pipeline, want string }{
		{`
  - source: {datagen: {}}
  - process: {operator: acme.dedup}
  - sink: {stdout: {}}`, `pipeline[1].inputs: process reads a key_by node (its state and timers are per key); "source-0" is a source`},
		{`
  - source: {datagen: {}}
  - key_by: ip
  - process: {operator: dedup}
  - sink: {stdout: {}}`, `pipeline[2].process.operator: "dedup" is not an operator id`},
		{`
  - source: {datagen: {}}
  - key_by: ip
  - process: {config: {a: 1}}
  - sink: {stdout: {}}`, `pipeline[2].process.operator: required`},
		{`
  - source: {datagen: {}}
  - key_by: ip
  - process: {operator: acme.x, config: [1]}
  - sink: {stdout: {}}`, `pipeline[2].process.config: want a mapping, got a list`},
		{`
  - source: {datagen: {}}
  - key_by: ip
  - {name: p, process: {operator: acme.x}}
  - {inputs: [p.bad-tag], sink: {stdout: {}}}`, `pipeline[3].inputs[0]: side output tag "bad-tag"`},
		{`
  - source: {datagen: {}}
  - key_by: ip
  - {name: p, process: {operator: acme.x}, map: {a: "1"}}
  - sink: {stdout: {}}`, `pipeline[2]: has map and process`},
	} {
		_, err := Parse([]byte("name: p\npipeline:" + c.pipeline + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}
