// Package graph turns a validated job spec into the job graph the scheduler
// places and the workers run: nodes chained into vertices where no
// repartitioning is needed, and edges with their partitioning between them.
package graph

import (
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Graph is the job graph. It is derived deterministically from the spec, so
// the coordinator and every worker build the same one.
type Graph struct {
	Job            *spec.Job
	MaxParallelism int
	// Vertices in topological order (sources first).
	Vertices []*Vertex
	// Edges, indexed by Edge.Index (the edge number on the wire).
	Edges []*Edge
}

// Vertex is a chain of nodes run by one task per subtask. Inside the chain,
// node i's main output feeds node i+1 directly, without serialization.
type Vertex struct {
	// ID is the name of the first node of the chain.
	ID          string
	Nodes       []*spec.Node
	Parallelism int
	// Inputs and Outputs are indexes into Graph.Edges. An input vertex with
	// several input edges unions them.
	Inputs  []int
	Outputs []int
}

// Edge connects an output of a node in one vertex to the first node of
// another vertex.
type Edge struct {
	Index int
	// From is the upstream vertex ID, FromNode the node in its chain whose
	// output this edge carries, and Tag the side output ("" for main).
	From     string
	FromNode string
	Tag      string
	// To is the downstream vertex ID.
	To           string
	Partitioning dataflow.Partitioning
}

// Vertex returns the vertex with the given ID, or nil.
func (g *Graph) Vertex(id string) *Vertex {
	for _, v := range g.Vertices {
		if v.ID == id {
			return v
		}
	}
	return nil
}
