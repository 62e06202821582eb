package coordinator

import (
	"context"

	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
)

// CheckTopicsFunc checks the input topics of a job before it is accepted
// (kafka.CheckSourceTopics): an error refuses the submission (a
// spec.Errors becomes one detail per field), warnings go back with the
// answer. parallelism is the subtasks of each source node by name; create
// is false for a dry run, which must not create topics.
type CheckTopicsFunc func(ctx context.Context, job *spec.Job, parallelism map[string]int, create bool) (warnings []string, err error)

// checkTopics runs Config.CheckTopics, if set, bounded by the storage
// timeout, with the parallelism of each source from the job's graph.
func (c *Coordinator) checkTopics(ctx context.Context, job *spec.Job, g *graph.Graph, create bool) ([]string, error) {
	if c.cfg.CheckTopics == nil {
		return nil, nil
	}
	p := map[string]int{}
	for _, v := range g.Vertices {
		for _, n := range v.Nodes {
			if n.Source != nil {
				p[n.Name] = v.Parallelism
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StorageTimeout)
	defer cancel()
	return c.cfg.CheckTopics(ctx, job, p, create)
}
