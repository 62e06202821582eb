package coordinator

import (
	"math"
	"net/http"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/lifecycle"
	"github.com/weir-stream/weir/dataflow/spec"
)

// handleGraph serves GET /api/v1/jobs/{id}/graph.
func (c *Coordinator) handleGraph(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	j := c.jobs[id]
	var out api.JobGraph
	if j != nil {
		out = c.renderGraphLocked(j)
	}
	c.mu.Unlock()
	if j == nil {
		writeError(w, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Coordinator) renderGraphLocked(j *jobEntry) api.JobGraph {
	m := j.m
	out := api.JobGraph{ID: m.ID, State: string(m.State), Attempt: m.Attempt, SampledAt: c.cfg.Clock.Now().UTC(),
		Vertices: make([]api.GraphVertex, 0, len(m.Vertices)), Edges: []api.GraphEdge{}}
	for _, v := range m.Vertices {
		gv := api.GraphVertex{ID: v.ID, Parallelism: v.Parallelism, Nodes: []api.GraphNode{}, States: map[string]int{}}
		if x := j.graph.Vertex(v.ID); x != nil {
			for _, n := range x.Nodes {
				gv.Nodes = append(gv.Nodes, api.GraphNode{Name: n.Name, Kind: n.Kind(), Connector: connectorOf(n)})
			}
		}
		var tasks []*lifecycle.Task
		for i := range v.Parallelism {
			t := m.Task(lifecycle.TaskKey{Vertex: v.ID, Subtask: i})
			if t == nil {
				continue
			}
			tasks = append(tasks, t)
			gv.RecordsIn += t.Metrics.RecordsIn
			gv.RecordsOut += t.Metrics.RecordsOut
			gv.BackpressuredMs += t.Metrics.BackpressuredMs
			gv.BusyMs += t.Metrics.BusyMs
			gv.IdleMs += t.Metrics.IdleMs
			gv.States[string(t.State)]++
		}
		if wm, ok := vertexWatermark(tasks); ok {
			lag := out.SampledAt.UnixMilli() - wm
			gv.Watermark, gv.EventTimeLagMs = &wm, &lag
		}
		out.Vertices = append(out.Vertices, gv)
	}
	for _, e := range j.graph.Edges {
		out.Edges = append(out.Edges, api.GraphEdge{From: e.From, To: e.To, FromNode: e.FromNode, Tag: e.Tag, Partitioning: string(e.Partitioning)})
	}
	return out
}

// vertexWatermark is the least watermark of a vertex's running subtasks,
// as a downstream task combines them; none while one of them has none yet.
func vertexWatermark(tasks []*lifecycle.Task) (int64, bool) {
	wm, ok := int64(math.MaxInt64), false
	for _, t := range tasks {
		if t.State != lifecycle.TaskRunning {
			continue
		}
		if t.Metrics.Watermark == nil {
			return 0, false
		}
		wm, ok = min(wm, *t.Metrics.Watermark), true
	}
	return wm, ok
}

// connectorOf names a source's or sink's connector ("" for other nodes).
func connectorOf(n *spec.Node) string {
	switch {
	case n.Source != nil && n.Source.Kafka != nil, n.Sink != nil && n.Sink.Kafka != nil:
		return "kafka"
	case n.Source != nil && n.Source.Datagen != nil:
		return "datagen"
	case n.Sink != nil && n.Sink.Stdout != nil:
		return "stdout"
	case n.Sink != nil && n.Sink.File != nil:
		return "file"
	case n.Sink != nil && n.Sink.Discard != nil:
		return "discard"
	case n.Source != nil && n.Source.Connector != "":
		return n.Source.Connector // a registered one (docs/sdk.md)
	case n.Sink != nil && n.Sink.Connector != "":
		return n.Sink.Connector
	}
	return ""
}

// handleSubtasks serves GET /api/v1/jobs/{id}/subtasks.
func (c *Coordinator) handleSubtasks(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	j := c.jobs[id]
	var out api.SubtaskList
	if j != nil {
		m := j.m
		out = api.SubtaskList{Attempt: m.Attempt, SampledAt: c.cfg.Clock.Now().UTC(), Subtasks: make([]api.SubtaskInfo, 0, len(m.Tasks))}
		for _, v := range m.Vertices {
			for i := range v.Parallelism {
				t := m.Task(lifecycle.TaskKey{Vertex: v.ID, Subtask: i})
				if t == nil {
					continue
				}
				s := api.SubtaskInfo{Vertex: v.ID, Index: i, Parallelism: v.Parallelism, Worker: t.Worker, State: string(t.State), Error: t.Error,
					RecordsIn: t.Metrics.RecordsIn, RecordsOut: t.Metrics.RecordsOut, BackpressuredMs: t.Metrics.BackpressuredMs,
					BusyMs: t.Metrics.BusyMs, IdleMs: t.Metrics.IdleMs, Watermark: t.Metrics.Watermark,
					DroppedLate: t.Metrics.DroppedLate, SkippedInvalid: t.Metrics.SkippedInvalid, DeadLettered: t.Metrics.DeadLettered}
				if wk := c.workers[t.Worker]; wk != nil {
					s.WorkerHTTPAddr = wk.httpAddr
				}
				out.Subtasks = append(out.Subtasks, s)
			}
		}
	}
	c.mu.Unlock()
	if j == nil {
		writeError(w, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
