package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestPlace(t *testing.T) {
	tests := []struct {
		name    string
		reqs    []Request
		workers []Worker
		want    map[string]int // slot groups (slots used) per worker
		order   []string       // worker of each assignment, when checked
		err     *InsufficientSlotsError
	}{
		{
			name:    "spreads groups over equal workers; subtask i of each vertex shares group i",
			reqs:    []Request{{"src", 2}, {"sink", 2}},
			workers: []Worker{{ID: "b", Free: 4}, {ID: "a", Free: 4}},
			want:    map[string]int{"a": 1, "b": 1},
			order:   []string{"a", "b", "a", "b"},
		},
		{
			name:    "most free first",
			reqs:    []Request{{"src", 3}},
			workers: []Worker{{ID: "a", Free: 1}, {ID: "b", Free: 5}, {ID: "c", Free: 2}},
			want:    map[string]int{"a": 1, "b": 1, "c": 1},
			order:   []string{"b", "c", "a"},
		},
		{
			name:    "skips full workers",
			reqs:    []Request{{"src", 5}},
			workers: []Worker{{ID: "a", Free: 1}, {ID: "b", Free: 4}},
			want:    map[string]int{"a": 1, "b": 4},
			order:   []string{"b", "a", "b", "b", "b"},
		},
		{
			name:    "ignores workers without free slots",
			reqs:    []Request{{"src", 2}},
			workers: []Worker{{ID: "a", Free: 0}, {ID: "b", Free: 2}},
			want:    map[string]int{"b": 2},
		},
		{
			name:    "three vertices share one slot",
			reqs:    []Request{{"src", 1}, {"map", 1}, {"sink", 1}},
			workers: []Worker{{ID: "a", Free: 1}},
			want:    map[string]int{"a": 1},
		},
		{
			name:    "three vertices at p=8 on 8 slots",
			reqs:    []Request{{"src", 8}, {"map", 8}, {"sink", 8}},
			workers: []Worker{{ID: "a", Free: 4}, {ID: "b", Free: 4}},
			want:    map[string]int{"a": 4, "b": 4},
		},
		{
			name:    "uneven parallelism needs the widest vertex",
			reqs:    []Request{{"src", 2}, {"map", 5}, {"sink", 1}},
			workers: []Worker{{ID: "a", Free: 3}, {ID: "b", Free: 2}},
			want:    map[string]int{"a": 3, "b": 2},
			order:   []string{"a", "b", "a", "b", "a", "b", "a", "a"},
		},
		{
			name:    "not enough slots",
			reqs:    []Request{{"src", 3}, {"sink", 5}},
			workers: []Worker{{ID: "a", Free: 2}, {ID: "b", Free: 2}},
			err:     &InsufficientSlotsError{Needed: 5, Free: 4},
		},
		{
			name: "no workers",
			reqs: []Request{{"src", 1}},
			err:  &InsufficientSlotsError{Needed: 1, Free: 0},
		},
		{
			name:    "empty job",
			workers: []Worker{{ID: "a", Free: 1}},
			want:    map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]Worker(nil), tt.workers...)
			got, err := Place(tt.reqs, Need{}, tt.workers)
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
			groups := map[int]string{}
			seen := map[Assignment]bool{}
			var order []string
			for _, a := range got {
				if w, ok := groups[a.Subtask]; !ok {
					groups[a.Subtask] = a.Worker
					used[a.Worker]++
				} else if w != a.Worker {
					t.Fatalf("slot group %d split over %s and %s", a.Subtask, w, a.Worker)
				}
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

func TestPlaceOperators(t *testing.T) {
	ops := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	const v1, v2 = "example.com/ops@v1.0.0", "example.com/ops@v2.0.0"
	tests := []struct {
		name    string
		reqs    []Request
		need    Need
		workers []Worker
		want    map[string]int // slots used per worker
		err     string         // the error's message, when it fails
	}{
		{
			name:    "no operators: every worker",
			reqs:    []Request{{"src", 2}},
			workers: []Worker{{ID: "a", Free: 1}, {ID: "b", Free: 1, Operators: ops("acme.x", v1)}},
			want:    map[string]int{"a": 1, "b": 1},
		},
		{
			name:    "only workers with the operator",
			reqs:    []Request{{"src", 2}, {"proc", 2}},
			need:    Need{Operators: []string{"acme.x"}},
			workers: []Worker{{ID: "a", Free: 8}, {ID: "b", Free: 2, Operators: ops("acme.x", v1)}, {ID: "c", Free: 2, Operators: ops("acme.x", v1)}},
			want:    map[string]int{"b": 2, "c": 2},
		},
		{
			name:    "every operator on one worker",
			reqs:    []Request{{"src", 2}},
			need:    Need{Operators: []string{"acme.x", "acme.y"}},
			workers: []Worker{{ID: "a", Free: 4, Operators: ops("acme.x", v1)}, {ID: "b", Free: 4, Operators: ops("acme.x", v1, "acme.y", v1)}},
			want:    map[string]int{"b": 2},
		},
		{
			name:    "one version: the preferred group though another has more room",
			reqs:    []Request{{"src", 2}},
			need:    Need{Operators: []string{"acme.x"}, Prefer: ops("acme.x", v1)},
			workers: []Worker{{ID: "a", Free: 1, Operators: ops("acme.x", v1)}, {ID: "b", Free: 8, Operators: ops("acme.x", v2)}, {ID: "c", Free: 1, Operators: ops("acme.x", v1)}},
			want:    map[string]int{"a": 1, "c": 1},
		},
		{
			name:    "one version: another group when the preferred one is too small",
			reqs:    []Request{{"src", 3}},
			need:    Need{Operators: []string{"acme.x"}, Prefer: ops("acme.x", v1)},
			workers: []Worker{{ID: "a", Free: 2, Operators: ops("acme.x", v1)}, {ID: "b", Free: 2, Operators: ops("acme.x", v2)}, {ID: "c", Free: 1, Operators: ops("acme.x", v2)}},
			want:    map[string]int{"b": 2, "c": 1},
		},
		{
			name:    "one version: no preference, most free slots",
			reqs:    []Request{{"src", 1}},
			need:    Need{Operators: []string{"acme.x"}},
			workers: []Worker{{ID: "a", Free: 1, Operators: ops("acme.x", v1)}, {ID: "b", Free: 2, Operators: ops("acme.x", v2)}},
			want:    map[string]int{"b": 1},
		},
		{
			name:    "versions never mix, even when together they would fit",
			reqs:    []Request{{"src", 3}},
			need:    Need{Operators: []string{"acme.x"}, Prefer: ops("acme.x", v1)},
			workers: []Worker{{ID: "a", Free: 2, Operators: ops("acme.x", v1)}, {ID: "b", Free: 2, Operators: ops("acme.x", v2)}},
			err:     "needs 3 slots, 2 free on the workers with acme.x " + v1 + " (a)",
		},
		{
			name:    "operator on no worker",
			reqs:    []Request{{"src", 1}},
			need:    Need{Operators: []string{"acme.x"}},
			workers: []Worker{{ID: "b", Free: 4}, {ID: "a", Free: 4, Operators: ops("acme.y", v1)}},
			err:     "operator acme.x is on no worker (workers a, b lack it); run workers built with the operator's module (weir build --with, docs/sdk-build.md)",
		},
		{
			name:    "operators on different workers",
			reqs:    []Request{{"src", 1}},
			need:    Need{Operators: []string{"acme.x", "acme.y"}},
			workers: []Worker{{ID: "a", Free: 4, Operators: ops("acme.x", v1)}, {ID: "b", Free: 4, Operators: ops("acme.y", v1)}},
			err:     "no worker carries every user operator the job names: operator acme.x is only on worker a (worker b lacks it); operator acme.y is only on worker b (worker a lacks it); run workers built with the operator's module (weir build --with, docs/sdk-build.md)",
		},
		{
			name: "no workers",
			reqs: []Request{{"src", 1}},
			need: Need{Operators: []string{"acme.x"}},
			err:  "operator acme.x: no worker is registered; run workers built with the operator's module (weir build --with, docs/sdk-build.md)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Place(tt.reqs, tt.need, tt.workers)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v\nwant  %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			used := map[string]int{}
			for _, a := range got {
				used[a.Worker]++
			}
			if !reflect.DeepEqual(used, tt.want) {
				t.Fatalf("slots used = %v, want %v", used, tt.want)
			}
			if m := Missing(tt.need, tt.workers); m != nil {
				t.Fatalf("Missing = %v for a job that was placed", m)
			}
		})
	}
}

// TestAssignGroupsLinear: dealing slot groups round robin takes O(groups +
// workers) steps, and deals exactly as the fixed ring that skipped full
// workers one by one (which took O(groups × workers): 1 million steps for
// one worker with 1,000 free slots among 999 with one).
func TestAssignGroupsLinear(t *testing.T) {
	ring := func(ws []Worker, needed int) []string {
		ws = append([]Worker(nil), ws...)
		group := make([]string, needed)
		next := 0
		for g := range group {
			for ws[next%len(ws)].Free == 0 {
				next++
			}
			w := &ws[next%len(ws)]
			w.Free--
			next++
			group[g] = w.ID
		}
		return group
	}
	skewed := []Worker{{ID: "big", Free: 1000}}
	for i := range 999 {
		skewed = append(skewed, Worker{ID: fmt.Sprintf("w%03d", i), Free: 1})
	}
	cases := [][]Worker{skewed, {{ID: "a", Free: 3}, {ID: "b", Free: 2}, {ID: "c", Free: 1}}, {{ID: "a", Free: 1}}}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var ws []Worker
		for i := range 1 + rnd.IntN(20) {
			ws = append(ws, Worker{ID: fmt.Sprintf("r%02d", i), Free: 1 + rnd.IntN(8)})
		}
		cases = append(cases, ws)
	}
	for _, ws := range cases {
		free := 0
		for _, w := range ws {
			free += w.Free
		}
		for _, needed := range []int{1, free / 2, free} {
			got, steps := assignGroups(ws, needed)
			if want := ring(ws, needed); !reflect.DeepEqual(got, want) {
				t.Fatalf("%d groups over %v: %v, want %v", needed, ws, got, want)
			}
			if limit := needed + len(ws); steps > limit {
				t.Errorf("%d groups over %d workers took %d steps, want at most %d", needed, len(ws), steps, limit)
			}
		}
	}
}
