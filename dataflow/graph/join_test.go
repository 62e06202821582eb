package graph

import (
	"testing"

	"github.com/weir-stream/weir/dataflow"
)

// A join's vertex reads two hash edges, its left input's first, even when
// the right input comes first in the pipeline: the task tells the join a
// record's side by the position of its edge in Vertex.Inputs.
func TestJoinInputsLeftFirst(t *testing.T) {
	g := build(t, `
name: j
parallelism: 2
pipeline:
  - {name: b, source: {datagen: {profile: sequence}, event_time: {field: ts}}}
  - {name: a, source: {datagen: {profile: sequence}, event_time: {field: ts}}}
  - {name: kb, inputs: [b], key_by: id}
  - {name: ka, inputs: [a], key_by: id}
  - {name: j, parallelism: 3, join: {left: ka, right: kb, interval: {upper: 1s}, right_prefix: r_}}
  - {parallelism: 3, sink: {stdout: {}}}
`)
	v := g.VertexOf("j")
	if v.ID != "j" || len(v.Inputs) != 2 {
		t.Fatalf("join vertex %s with inputs %v: %s", v.ID, v.Inputs, g)
	}
	for i, want := range []string{"ka", "kb"} {
		e := g.Edges[v.Inputs[i]]
		if e.FromNode != want || e.Partitioning != dataflow.Hash {
			t.Fatalf("input %d is %s (%s), want %s hashed: %s", i, e.FromNode, e.Partitioning, want, g)
		}
	}
	if g.VertexOf("sink-5").ID != "j" {
		t.Fatalf("the sink is not chained to the join: %s", g)
	}
}
