package coordinator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/scheduler"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// operatorVersion is what "the same version" compares: the module and its
// version, so an id that moved to another module counts as another version.
func operatorVersion(module, version string) string { return module + "@" + version }

func operatorVersions(ops []*controlpb.Operator) map[string]string {
	if len(ops) == 0 {
		return nil
	}
	m := make(map[string]string, len(ops))
	for _, o := range ops {
		m[o.GetId()] = operatorVersion(o.GetModule(), o.GetVersion())
	}
	return m
}

func renderOperators(ops []*controlpb.Operator) []api.Operator {
	out := make([]api.Operator, 0, len(ops))
	for _, o := range ops {
		out = append(out, api.Operator{ID: o.GetId(), Kind: o.GetKind(), Module: o.GetModule(), Version: o.GetVersion()})
	}
	return out
}

// jobOperators are the ids of the registered components (process
// operators, source and sink connectors) a job names, each once, in
// pipeline order.
func jobOperators(job *spec.Job) []string {
	var ids []string
	if job == nil {
		return nil
	}
	for _, u := range job.UserComponents() {
		if !slices.Contains(ids, u.ID) {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

// need is what placing a job asks of workers: its operators, preferring
// the versions in this coordinator's binary, which checked its config.
func need(job *spec.Job) scheduler.Need {
	n := scheduler.Need{Operators: jobOperators(job)}
	for _, id := range n.Operators {
		if e, ok := registry.Lookup(id); ok {
			if n.Prefer == nil {
				n.Prefer = map[string]string{}
			}
			n.Prefer[id] = operatorVersion(e.Module, e.Version)
		}
	}
	return n
}

func (c *Coordinator) jobNeedLocked(j *jobEntry) scheduler.Need {
	if j.graph == nil {
		return scheduler.Need{}
	}
	return need(j.graph.Job)
}

// checkOperators refuses a job that no registered worker can run because
// none carries every user operator it names, so that it fails at submit
// with the operator and the workers that lack it instead of waiting in
// SCHEDULING. With no worker registered yet the job waits as for slots.
func (c *Coordinator) checkOperators(job *spec.Job) *api.Error {
	n := need(job)
	if len(n.Operators) == 0 {
		return nil
	}
	c.mu.Lock()
	ws := c.freeSlotsLocked()
	c.mu.Unlock()
	if len(ws) == 0 {
		return nil
	}
	me := scheduler.Missing(n, ws)
	if me == nil {
		return nil
	}
	var details []api.ErrorDetail
	for _, o := range me.Operators {
		if len(o.Lacking) == 0 {
			continue
		}
		for _, u := range job.UserComponents() {
			if u.ID == o.ID {
				msg := fmt.Sprintf("operator %s is on no worker; %s", o.ID, lacking(o.Lacking))
				if len(o.Having) > 0 {
					msg = fmt.Sprintf("operator %s is only on %s; %s", o.ID, strings.Join(o.Having, ", "), lacking(o.Lacking))
				}
				details = append(details, api.ErrorDetail{Path: u.IDPath(), Message: msg})
			}
		}
	}
	return &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidSpec, Message: "job refused: " + me.Error(), Details: details}
}

func lacking(ids []string) string {
	if len(ids) == 1 {
		return "worker " + ids[0] + " lacks it"
	}
	return "workers " + strings.Join(ids, ", ") + " lack it"
}
