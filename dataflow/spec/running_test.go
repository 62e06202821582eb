package spec

import (
	"strings"
	"testing"
	"time"
)

const runningSpec = `
name: r
pipeline:
  - source: {datagen: {count: 10}, schema: {ip: string, bytes: int}}
  - key_by: ip
  - name: totals
    running:
      aggregates: {hits: count(), volume: sum(bytes), biggest: max(bytes)}
      ttl: 1h
  - filter: hits > 1 && ip != ""
  - sink: {stdout: {}}
`

func TestParseRunning(t *testing.T) {
	j, err := Parse([]byte(runningSpec))
	if err != nil {
		t.Fatal(err)
	}
	r := j.Node("totals").Running
	if j.Node("totals").Kind() != KindRunning || len(r.Aggregates) != 3 || r.TTL.D() != time.Hour {
		t.Fatalf("running %+v", r)
	}
}

func TestRunningErrors(t *testing.T) {
	const src = "  - source: {datagen: {}, schema: {ip: string, bytes: int}}\n"
	for _, c := range []struct{ pipeline, want string }{
		{src + `  - key_by: ip
  - running: {}
  - sink: {stdout: {}}`, `pipeline[2].running.aggregates: needs at least one aggregate`},
		{src + `  - key_by: ip
  - running: {aggregates: {n: total(bytes)}}
  - sink: {stdout: {}}`, `pipeline[2].running.aggregates.n: aggregate "total(bytes)": unknown function`},
		{src + `  - key_by: ip
  - running: {aggregates: {ip: count()}}
  - sink: {stdout: {}}`, `pipeline[2].running.aggregates.ip: clashes with the key field`},
		{src + `  - key_by: ip
  - running: {aggregates: {n: sum(nope)}}
  - sink: {stdout: {}}`, `pipeline[2].running.aggregates.n: `},
		{src + `  - key_by: ip
  - running: {aggregates: {n: count()}, ttl: -1s}
  - sink: {stdout: {}}`, `pipeline[2].running.ttl: must be >= 0`},
		{src + `  - running: {aggregates: {n: count()}}
  - sink: {stdout: {}}`, `pipeline[1].inputs: running reads a key_by node (it aggregates per key); "source-0" is a source`},
		{src + `  - key_by: ip
  - running: {aggregates: {n: count()}}
  - filter: bytes > 1
  - sink: {stdout: {}}`, `pipeline[3].filter: `}, // the output has ip and n only
	} {
		_, err := Parse([]byte("name: p\npipeline:\n" + c.pipeline + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}
