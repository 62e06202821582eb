package graph

import (
	"os"
	"reflect"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

func build(t *testing.T, src string) *Graph {
	t.Helper()
	job, err := spec.Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	g, err := Build(job)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	checkConsistent(t, g)
	return g
}

// checkConsistent checks the invariants every graph has.
func checkConsistent(t *testing.T, g *Graph) {
	t.Helper()
	pos := map[string]int{}
	for i, v := range g.Vertices {
		pos[v.ID] = i
		if v.ID != v.Nodes[0].Name {
			t.Errorf("vertex %s: ID is not its first node", v.ID)
		}
		for _, n := range v.Nodes {
			if n.Parallelism != v.Parallelism {
				t.Errorf("vertex %s: node %s has parallelism %d", v.ID, n.Name, n.Parallelism)
			}
		}
	}
	for i, e := range g.Edges {
		if e.Index != i {
			t.Errorf("edge %d has Index %d", i, e.Index)
		}
		if pos[e.From] >= pos[e.To] {
			t.Errorf("edge %d: %s -> %s is not in topological order", i, e.From, e.To)
		}
		if g.VertexOf(e.FromNode) != g.Vertex(e.From) {
			t.Errorf("edge %d: FromNode %s not in vertex %s", i, e.FromNode, e.From)
		}
		if e.Partitioning == dataflow.Forward && g.Vertex(e.From).Parallelism != g.Vertex(e.To).Parallelism {
			t.Errorf("edge %d: forward between different parallelisms", i)
		}
		if !contains(g.Vertex(e.From).Outputs, i) || !contains(g.Vertex(e.To).Inputs, i) {
			t.Errorf("edge %d missing from its vertices' Inputs/Outputs", i)
		}
	}
}

func contains(s []int, x int) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func TestIPVisits(t *testing.T) {
	data, err := os.ReadFile("../../examples/ip-visits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err = spec.ExpandEnv(data, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	job, err := spec.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Build(job)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, g)
	want := "[access-log>found>by-ip](2) [per-minute>ip-visits](2); 0:by-ip(access-log)-hash->per-minute"
	if got := g.String(); got != want {
		t.Fatalf("graph\n got %s\nwant %s", got, want)
	}
	if g.MaxParallelism != 128 || g.Job != job {
		t.Fatalf("MaxParallelism %d", g.MaxParallelism)
	}
	if !reflect.DeepEqual(g.Vertices[0].Outputs, []int{0}) || !reflect.DeepEqual(g.Vertices[1].Inputs, []int{0}) {
		t.Fatalf("edges %v %v", g.Vertices[0].Outputs, g.Vertices[1].Inputs)
	}
}

func TestShapes(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"fan-out", `
name: j
pipeline:
  - {name: src, source: {datagen: {}}}
  - {name: a, filter: "true"}
  - {name: out-a, sink: {discard: {}}}
  - {name: b, inputs: [src], map: {x: "1"}}
  - {name: out-b, sink: {discard: {}}}
`, "[src](1) [a>out-a](1) [b>out-b](1); 0:src(src)-forward->a; 1:src(src)-forward->b"},
		{"union", `
name: j
pipeline:
  - {name: s1, source: {datagen: {}}}
  - {name: s2, source: {datagen: {}}, parallelism: 3}
  - {name: u, inputs: [s1, s2], union: {}}
  - {name: out, sink: {discard: {}}}
`, "[s1](1) [s2](3) [u>out](1); 0:s1(s1)-forward->u; 1:s2(s2)-rebalance->u"},
		{"side output", `
name: j
pipeline:
  - {name: src, source: {datagen: {}, event_time: {field: ts}}}
  - {name: k, key_by: ip}
  - {name: win, window: {tumbling: 1m, late: side_output, aggregates: {n: count()}}}
  - {name: out, sink: {discard: {}}}
  - {name: late, inputs: [win.late], sink: {stdout: {}}}
`, "[src>k](1) [win>out](1) [late](1); 0:k(src)-hash->win; 1:win.late(win)-forward->late"},
		{"side output and main to one node", `
name: j
pipeline:
  - {name: src, source: {datagen: {}, event_time: {field: ts}}}
  - {name: k, key_by: ip}
  - {name: win, window: {tumbling: 1m, late: side_output, aggregates: {n: count()}}}
  - {name: out, inputs: [win, win.late], sink: {discard: {}}}
`, "[src>k](1) [win](1) [out](1); 0:k(src)-hash->win; 1:win(win)-forward->out; 2:win.late(win)-forward->out"},
		{"parallelism changes", `
name: j
parallelism: 4
pipeline:
  - {name: src, source: {datagen: {}}, parallelism: 2}
  - {name: f, filter: "true"}
  - {name: m, map: {x: "1"}}
  - {name: out, sink: {discard: {}}, parallelism: 1}
`, "[src](2) [f>m](4) [out](1); 0:src(src)-rebalance->f; 1:m(f)-rebalance->out"},
		{"broadcast and rebalance", `
name: j
parallelism: 2
pipeline:
  - {name: src, source: {datagen: {}}}
  - {name: f, filter: "true", partition: rebalance}
  - {name: out, sink: {discard: {}}, partition: broadcast}
`, "[src](2) [f](2) [out](2); 0:src(src)-rebalance->f; 1:f(f)-broadcast->out"},
		{"key_by never chains", `
name: j
pipeline:
  - {name: src, source: {datagen: {}}}
  - {name: k, key_by: ip}
  - {name: out, sink: {discard: {}}}
`, "[src>k](1) [out](1); 0:k(src)-hash->out"},
		{"inputs out of pipeline order", `
name: j
pipeline:
  - {name: out, inputs: [f], sink: {discard: {}}}
  - {name: f, inputs: [src], filter: "true"}
  - {name: src, source: {datagen: {}}}
`, "[src>f>out](1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := build(t, c.src).String(); got != c.want {
				t.Fatalf("graph\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestBuildDeterministic(t *testing.T) {
	src := `
name: j
pipeline:
  - {name: s1, source: {datagen: {}}}
  - {name: s2, source: {datagen: {}}, parallelism: 2}
  - {name: u, inputs: [s2, s1], union: {}}
  - {name: k, key_by: ip}
  - {name: a, sink: {discard: {}}}
  - {name: b, inputs: [u], sink: {discard: {}}}
`
	first := build(t, src).String()
	for range 20 {
		if got := build(t, src).String(); got != first {
			t.Fatalf("not deterministic:\n%s\n%s", first, got)
		}
	}
	want := "[s1](1) [s2](2) [u](1) [k](1) [a](1) [b](1); 0:s2(s2)-rebalance->u; 1:s1(s1)-forward->u; 2:u(u)-forward->k; 3:k(k)-hash->a; 4:u(u)-forward->b"
	if first != want {
		t.Fatalf("graph\n got %s\nwant %s", first, want)
	}
}

func TestBuildRejectsInvalid(t *testing.T) {
	for name, job := range map[string]*spec.Job{
		"nil":      nil,
		"cycle":    {Pipeline: []spec.Node{{Name: "a", Inputs: []string{"b"}, Parallelism: 1}, {Name: "b", Inputs: []string{"a"}, Parallelism: 1}}},
		"unknown":  {Pipeline: []spec.Node{{Name: "a", Inputs: []string{"x"}, Parallelism: 1}}},
		"dup":      {Pipeline: []spec.Node{{Name: "a", Parallelism: 1}, {Name: "a", Parallelism: 1}}},
		"no par":   {Pipeline: []spec.Node{{Name: "a"}}},
		"no names": {Pipeline: []spec.Node{{Parallelism: 1}}},
	} {
		if _, err := Build(job); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
