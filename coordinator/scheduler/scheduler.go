// Package scheduler places a job's subtasks onto free worker slots. Place is
// a pure function: the caller snapshots the registry, places, and feeds the
// result to the job's state machine.
//
// A job that names user operators (spec process nodes) runs only on
// workers whose binaries carry every one of them, and all its subtasks run
// the same code: the workers it is placed on carry the same version
// (module@version) of each operator it names. Among the groups of workers
// that agree on those versions, the group with the coordinator's own
// versions (the code that checked the job's config at submit) is tried
// first, then the others by free slots (most first) and version.
package scheduler

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Request is one vertex and how many subtasks it has.
type Request struct {
	Vertex      string
	Parallelism int
}

// Worker is a worker, its free slots and the user operators it carries.
type Worker struct {
	ID   string
	Free int
	// Operators maps the id of each user operator in the worker's binary
	// to its version, module@version.
	Operators map[string]string
}

// Need is what a job needs from a worker besides a slot.
type Need struct {
	// Operators are the user operator ids the job names.
	Operators []string
	// Prefer maps operator ids to the versions to try first.
	Prefer map[string]string
}

// Assignment puts one subtask on one worker.
type Assignment struct {
	Vertex  string
	Subtask int
	Worker  string
}

// InsufficientSlotsError says the cluster has too few free slots (on the
// workers that carry the job's operators, when Operators is set).
type InsufficientSlotsError struct {
	Needed, Free int
	// Operators describes the workers that could run the job, when it
	// names user operators.
	Operators string
}

func (e *InsufficientSlotsError) Error() string {
	if e.Operators != "" {
		return fmt.Sprintf("needs %d slots, %d free on %s", e.Needed, e.Free, e.Operators)
	}
	return fmt.Sprintf("needs %d slots, %d free", e.Needed, e.Free)
}

// MissingOperatorError says no worker carries every user operator a job
// names. Operators lists, per operator the job names, where it is.
type MissingOperatorError struct {
	Operators []OperatorPlacement
}

// OperatorPlacement says which workers carry an operator and which lack it.
type OperatorPlacement struct {
	ID              string
	Having, Lacking []string
}

func (e *MissingOperatorError) Error() string {
	var parts []string
	missing := false
	for _, o := range e.Operators {
		switch {
		case len(o.Having) == 0 && len(o.Lacking) == 0:
			parts = append(parts, fmt.Sprintf("operator %s: no worker is registered", o.ID))
			missing = true
		case len(o.Having) == 0:
			parts = append(parts, fmt.Sprintf("operator %s is on no worker (%s %s it)", o.ID, workerList(o.Lacking), lackVerb(o.Lacking)))
			missing = true
		case len(o.Lacking) > 0:
			parts = append(parts, fmt.Sprintf("operator %s is only on %s (%s %s it)", o.ID, workerList(o.Having), workerList(o.Lacking), lackVerb(o.Lacking)))
		}
	}
	msg := strings.Join(parts, "; ")
	if !missing {
		msg = "no worker carries every user operator the job names: " + msg
	}
	return msg + "; run workers built with the operator's module (weir build --with, docs/sdk-build.md)"
}

func workerList(ids []string) string {
	if len(ids) == 1 {
		return "worker " + ids[0]
	}
	return "workers " + strings.Join(ids, ", ")
}

func lackVerb(ids []string) string {
	if len(ids) == 1 {
		return "lacks"
	}
	return "lack"
}

// Missing returns where each operator of need is when no worker carries
// all of them, nil when one does. Free slots do not matter here.
func Missing(need Need, workers []Worker) *MissingOperatorError {
	if len(need.Operators) == 0 {
		return nil
	}
	for _, w := range workers {
		if hasAll(w, need.Operators) {
			return nil
		}
	}
	ws := slices.Clone(workers)
	sort.Slice(ws, func(a, b int) bool { return ws[a].ID < ws[b].ID })
	e := &MissingOperatorError{}
	for _, id := range need.Operators {
		o := OperatorPlacement{ID: id}
		for _, w := range ws {
			if _, ok := w.Operators[id]; ok {
				o.Having = append(o.Having, w.ID)
			} else {
				o.Lacking = append(o.Lacking, w.ID)
			}
		}
		e.Operators = append(e.Operators, o)
	}
	return e
}

func hasAll(w Worker, ids []string) bool {
	for _, id := range ids {
		if _, ok := w.Operators[id]; !ok {
			return false
		}
	}
	return true
}

// Place assigns every subtask of every vertex to a slot with slot sharing,
// as in Flink: a slot holds one subtask of each vertex of the job, so a job
// needs as many slots as its widest vertex (Slots), not one per subtask.
// Subtask i of every vertex goes into the job's slot group i, and a group
// lives on one worker, which co-locates forward chains. Groups go to
// workers that carry the operators need names at one version each
// (package doc), spread round robin over them ordered by free slots (most
// first, then by ID), skipping workers that are full. Assignments come in
// request order, then subtask order. Place returns *MissingOperatorError
// when no worker carries every operator, *InsufficientSlotsError when the
// free slots do not suffice; it never places part of a job.
func Place(reqs []Request, need Need, workers []Worker) ([]Assignment, error) {
	if len(need.Operators) == 0 {
		return place(reqs, workers)
	}
	if e := Missing(need, workers); e != nil {
		return nil, e
	}
	type group struct {
		sig, desc string
		preferred bool
		free      int
		workers   []Worker
	}
	groups := map[string]*group{}
	for _, w := range workers {
		if !hasAll(w, need.Operators) {
			continue
		}
		vs := make([]string, len(need.Operators))
		for i, id := range need.Operators {
			vs[i] = w.Operators[id]
		}
		sig := strings.Join(vs, "\x00")
		g := groups[sig]
		if g == nil {
			g = &group{sig: sig, preferred: need.Prefer != nil}
			var desc []string
			for i, id := range need.Operators {
				desc = append(desc, id+" "+vs[i])
				if need.Prefer != nil && need.Prefer[id] != vs[i] {
					g.preferred = false
				}
			}
			g.desc = strings.Join(desc, ", ")
			groups[sig] = g
		}
		g.free += max(w.Free, 0)
		g.workers = append(g.workers, w)
	}
	order := make([]*group, 0, len(groups))
	for _, g := range groups {
		order = append(order, g)
	}
	sort.Slice(order, func(a, b int) bool {
		ga, gb := order[a], order[b]
		if ga.preferred != gb.preferred {
			return ga.preferred
		}
		if ga.free != gb.free {
			return ga.free > gb.free
		}
		return ga.sig < gb.sig
	})
	for _, g := range order {
		if as, err := place(reqs, g.workers); err == nil {
			return as, nil
		}
	}
	// Report the group that comes closest.
	best := order[0]
	for _, g := range order[1:] {
		if g.free > best.free {
			best = g
		}
	}
	ids := make([]string, 0, len(best.workers))
	for _, w := range best.workers {
		ids = append(ids, w.ID)
	}
	sort.Strings(ids)
	return nil, &InsufficientSlotsError{Needed: needed(reqs), Free: best.free,
		Operators: fmt.Sprintf("the workers with %s (%s)", best.desc, strings.Join(ids, ", "))}
}

// Slots is the number of slots a job with reqs needs under slot sharing:
// the parallelism of its widest vertex.
func Slots(reqs []Request) int {
	n := 0
	for _, r := range reqs {
		n = max(n, r.Parallelism)
	}
	return n
}

func needed(reqs []Request) int { return Slots(reqs) }

func place(reqs []Request, workers []Worker) ([]Assignment, error) {
	needed, free := needed(reqs), 0
	ws := make([]Worker, 0, len(workers))
	for _, w := range workers {
		if w.Free > 0 {
			ws = append(ws, w)
			free += w.Free
		}
	}
	if needed > free {
		return nil, &InsufficientSlotsError{Needed: needed, Free: free}
	}
	sort.SliceStable(ws, func(a, b int) bool {
		if ws[a].Free != ws[b].Free {
			return ws[a].Free > ws[b].Free
		}
		return ws[a].ID < ws[b].ID
	})
	group, _ := assignGroups(ws, needed)
	n := 0
	for _, r := range reqs {
		n += max(r.Parallelism, 0)
	}
	out := make([]Assignment, 0, n)
	for _, r := range reqs {
		for i := 0; i < r.Parallelism; i++ {
			out = append(out, Assignment{Vertex: r.Vertex, Subtask: i, Worker: group[i]})
		}
	}
	return out, nil
}

// assignGroups deals needed slot groups round robin over ws (sorted, every
// one with a free slot, needed at most their sum) and returns the worker of
// each group and the steps it took. Each pass over the ring drops the
// workers it filled: skipping full workers one by one in a fixed ring cost
// O(groups × workers) when a few workers had many free slots among many
// with one.
func assignGroups(ws []Worker, needed int) (group []string, steps int) {
	group = make([]string, 0, needed)
	ring := slices.Clone(ws)
	for len(group) < needed && len(ring) > 0 {
		live := ring[:0]
		for i := range ring {
			steps++
			if len(group) == needed {
				live = append(live, ring[i:]...)
				break
			}
			w := ring[i]
			w.Free--
			group = append(group, w.ID)
			if w.Free > 0 {
				live = append(live, w)
			}
		}
		ring = live
	}
	return group, steps
}
