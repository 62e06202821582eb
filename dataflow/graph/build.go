package graph

import (
	"errors"
	"fmt"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Build derives the job graph from a validated job spec (see spec.Parse).
//
// Node B is chained into the vertex of node A when B's only input is A's main
// output, B is the only consumer of that output, both have the same
// parallelism, B sets no partition, and A is not a key_by (the edge after a
// key_by always hashes). Every other input becomes an edge, partitioned by
// hash after a key_by, else by the reading node's partition setting, else
// forward when the parallelism is equal and rebalance when it is not.
//
// Vertices are in topological order, ties broken by pipeline order; edges
// are numbered by downstream vertex, then by the order of its inputs. The
// result depends only on the spec, so every process builds the same graph.
func Build(job *spec.Job) (*Graph, error) {
	if job == nil {
		return nil, errors.New("graph: nil job")
	}
	nodes := make([]*spec.Node, len(job.Pipeline))
	index := make(map[string]int, len(nodes))
	for i := range job.Pipeline {
		n := &job.Pipeline[i]
		if _, dup := index[n.Name]; dup || n.Name == "" {
			return nil, fmt.Errorf("graph: node name %q is empty or not unique (validate the job first)", n.Name)
		}
		if n.Parallelism < 1 {
			return nil, fmt.Errorf("graph: node %q has parallelism %d (validate the job first)", n.Name, n.Parallelism)
		}
		nodes[i] = n
		index[n.Name] = i
	}
	type input struct {
		from int
		tag  string
	}
	inputs := make([][]input, len(nodes))
	mainConsumers := make([]int, len(nodes))
	indeg := make([]int, len(nodes))
	outs := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, ref := range n.Inputs {
			name, tag := spec.ParseInput(ref)
			u, ok := index[name]
			if !ok {
				return nil, fmt.Errorf("graph: node %q reads unknown node %q", n.Name, name)
			}
			inputs[i] = append(inputs[i], input{u, tag})
			if tag == "" {
				mainConsumers[u]++
			}
			indeg[i]++
			outs[u] = append(outs[u], i)
		}
	}

	// Topological order, ties broken by pipeline order.
	order := make([]int, 0, len(nodes))
	done := make([]bool, len(nodes))
	for len(order) < len(nodes) {
		next := -1
		for i := range nodes {
			if !done[i] && indeg[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			return nil, errors.New("graph: the pipeline has a cycle (validate the job first)")
		}
		done[next] = true
		order = append(order, next)
		for _, d := range outs[next] {
			indeg[d]--
		}
	}

	g := &Graph{Job: job, MaxParallelism: job.MaxParallelism}
	if g.MaxParallelism == 0 {
		g.MaxParallelism = dataflow.DefaultMaxParallelism
	}
	vertexOf := make([]*Vertex, len(nodes))
	chained := func(i int) (int, bool) {
		n := nodes[i]
		if len(inputs[i]) != 1 || n.Partition != "" {
			return 0, false
		}
		in := inputs[i][0]
		a := nodes[in.from]
		ok := in.tag == "" && mainConsumers[in.from] == 1 &&
			a.Parallelism == n.Parallelism && a.KeyBy == nil
		return in.from, ok
	}
	for _, i := range order {
		if a, ok := chained(i); ok {
			v := vertexOf[a]
			v.Nodes = append(v.Nodes, nodes[i])
			vertexOf[i] = v
			continue
		}
		v := &Vertex{ID: nodes[i].Name, Nodes: []*spec.Node{nodes[i]}, Parallelism: nodes[i].Parallelism}
		g.Vertices = append(g.Vertices, v)
		vertexOf[i] = v
	}

	for _, v := range g.Vertices {
		head := index[v.ID]
		n := nodes[head]
		for _, in := range inputs[head] {
			up := nodes[in.from]
			from := vertexOf[in.from]
			e := &Edge{
				Index:        len(g.Edges),
				From:         from.ID,
				FromNode:     up.Name,
				Tag:          in.tag,
				To:           v.ID,
				Partitioning: partitioning(up, n),
			}
			g.Edges = append(g.Edges, e)
			v.Inputs = append(v.Inputs, e.Index)
			from.Outputs = append(from.Outputs, e.Index)
		}
	}
	return g, nil
}

func partitioning(up, n *spec.Node) dataflow.Partitioning {
	switch {
	case up.KeyBy != nil:
		return dataflow.Hash
	case n.Partition == "rebalance":
		return dataflow.Rebalance
	case n.Partition == "broadcast":
		return dataflow.Broadcast
	case up.Parallelism == n.Parallelism:
		return dataflow.Forward
	}
	return dataflow.Rebalance
}

// VertexOf returns the vertex whose chain holds the named node, or nil.
func (g *Graph) VertexOf(node string) *Vertex {
	for _, v := range g.Vertices {
		for _, n := range v.Nodes {
			if n.Name == node {
				return v
			}
		}
	}
	return nil
}

// String renders the graph compactly for logs and tests, such as
// "[src>filter>keyed](2) -hash-> [win>out](2)".
func (g *Graph) String() string {
	s := ""
	for _, v := range g.Vertices {
		if s != "" {
			s += " "
		}
		s += "["
		for i, n := range v.Nodes {
			if i > 0 {
				s += ">"
			}
			s += n.Name
		}
		s += fmt.Sprintf("](%d)", v.Parallelism)
	}
	for _, e := range g.Edges {
		from := e.FromNode
		if e.Tag != "" {
			from += "." + e.Tag
		}
		s += fmt.Sprintf("; %d:%s(%s)-%s->%s", e.Index, from, e.From, e.Partitioning, e.To)
	}
	return s
}
