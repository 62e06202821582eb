package scheduler

import (
	"errors"
	"reflect"
	"testing"
)

func TestPlace(t *testing.T) {
	tests := []struct {
		name    string
		reqs    []Request
		workers []Worker
		want    map[string]int // slots used per worker
		order   []string       // worker of each assignment, when checked
		err     *InsufficientSlotsError
	}{
		{
			name:    "spreads over equal workers",
			reqs:    []Request{{"src", 2}, {"sink", 2}},
			workers: []Worker{{"b", 4}, {"a", 4}},
			want:    map[string]int{"a": 2, "b": 2},
			order:   []string{"a", "b", "a", "b"},
		},
		{
			name:    "most free first",
			reqs:    []Request{{"src", 3}},
			workers: []Worker{{"a", 1}, {"b", 5}, {"c", 2}},
			want:    map[string]int{"a": 1, "b": 1, "c": 1},
			order:   []string{"b", "c", "a"},
		},
		{
			name:    "skips full workers",
			reqs:    []Request{{"src", 5}},
			workers: []Worker{{"a", 1}, {"b", 4}},
			want:    map[string]int{"a": 1, "b": 4},
			order:   []string{"b", "a", "b", "b", "b"},
		},
		{
			name:    "ignores workers without free slots",
			reqs:    []Request{{"src", 2}},
			workers: []Worker{{"a", 0}, {"b", 2}},
			want:    map[string]int{"b": 2},
		},
		{
			name:    "exactly enough",
			reqs:    []Request{{"src", 1}, {"map", 1}, {"sink", 1}},
			workers: []Worker{{"a", 1}, {"b", 1}, {"c", 1}},
			want:    map[string]int{"a": 1, "b": 1, "c": 1},
		},
		{
			name:    "not enough slots",
			reqs:    []Request{{"src", 3}, {"sink", 3}},
			workers: []Worker{{"a", 2}, {"b", 2}},
			err:     &InsufficientSlotsError{Needed: 6, Free: 4},
		},
		{
			name: "no workers",
			reqs: []Request{{"src", 1}},
			err:  &InsufficientSlotsError{Needed: 1, Free: 0},
		},
		{
			name:    "empty job",
			workers: []Worker{{"a", 1}},
			want:    map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]Worker(nil), tt.workers...)
			got, err := Place(tt.reqs, tt.workers)
			if !reflect.DeepEqual(in, tt.workers) {
				t.Fatalf("Place modified its input: %v", tt.workers)
			}
			if tt.err != nil {
				var ie *InsufficientSlotsError
				if !errors.As(err, &ie) || *ie != *tt.err {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if err.Error() != tt.err.Error() {
					t.Fatalf("message %q", err.Error())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			used := map[string]int{}
			seen := map[Assignment]bool{}
			var order []string
			for _, a := range got {
				used[a.Worker]++
				order = append(order, a.Worker)
				if seen[Assignment{a.Vertex, a.Subtask, ""}] {
					t.Fatalf("subtask placed twice: %v", a)
				}
				seen[Assignment{a.Vertex, a.Subtask, ""}] = true
			}
			n := 0
			for _, r := range tt.reqs {
				n += r.Parallelism
			}
			if len(got) != n {
				t.Fatalf("placed %d subtasks, want %d", len(got), n)
			}
			if !reflect.DeepEqual(used, tt.want) {
				t.Fatalf("slots used = %v, want %v", used, tt.want)
			}
			if tt.order != nil && !reflect.DeepEqual(order, tt.order) {
				t.Fatalf("order = %v, want %v", order, tt.order)
			}
		})
	}
}
