// Package scheduler places a job's subtasks onto free worker slots. Place is
// a pure function: the caller snapshots the registry, places, and feeds the
// result to the job's state machine.
package scheduler

import (
	"fmt"
	"sort"
)

// Request is one vertex and how many subtasks it has.
type Request struct {
	Vertex      string
	Parallelism int
}

// Worker is a worker and its free slots.
type Worker struct {
	ID   string
	Free int
}

// Assignment puts one subtask on one worker.
type Assignment struct {
	Vertex  string
	Subtask int
	Worker  string
}

// InsufficientSlotsError says the cluster has too few free slots.
type InsufficientSlotsError struct{ Needed, Free int }

func (e *InsufficientSlotsError) Error() string {
	return fmt.Sprintf("needs %d slots, %d free", e.Needed, e.Free)
}

// Place assigns every subtask of every vertex to a slot, one slot per
// subtask (no slot sharing). It spreads subtasks across workers: round robin
// over the workers ordered by free slots (most first, then by ID), skipping
// workers that are full. Assignments come in request order, then subtask
// order. Place returns *InsufficientSlotsError when the free slots do not
// suffice; it never places part of a job.
func Place(reqs []Request, workers []Worker) ([]Assignment, error) {
	needed, free := 0, 0
	for _, r := range reqs {
		needed += max(r.Parallelism, 0)
	}
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
	out := make([]Assignment, 0, needed)
	next := 0
	for _, r := range reqs {
		for i := 0; i < r.Parallelism; i++ {
			for ws[next%len(ws)].Free == 0 {
				next++
			}
			w := &ws[next%len(ws)]
			w.Free--
			next++
			out = append(out, Assignment{Vertex: r.Vertex, Subtask: i, Worker: w.ID})
		}
	}
	return out, nil
}
