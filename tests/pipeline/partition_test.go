package pipeline

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Parallelism changes between vertices: a source of 1 hashes into a window
// of 3, whose results are rebalanced into a sink of 2. The results are
// exact, each window subtask owns whole keys, and both sink subtasks get
// records.
func TestParallelismChanges(t *testing.T) {
	const count = 300
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 3})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, spec(`name: rescale
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: {{count}}}
      event_time: {field: ts}
  - name: by-k
    key_by: {expr: "'k' + string(id % 7)", as: k}
  - name: win
    parallelism: 3
    window:
      tumbling: 50ms
      aggregates: {n: count(), s: sum(id)}
  - name: sink
    parallelism: 2
    sink: {file: {path: {{out}}}}
`, "{{out}}", out, "{{count}}", fmt.Sprint(count)))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	par := map[string]int{}
	for _, v := range j.Vertices {
		par[v.ID] = v.Parallelism
	}
	if par["gen"] != 1 || par["win"] != 3 || par["sink"] != 2 {
		t.Fatalf("vertices %v", par)
	}
	type wk struct {
		k     string
		start int64
	}
	type agg struct{ n, s int64 }
	model := map[wk]*agg{}
	for n := int64(0); n < count; n++ {
		ts := t0 + n
		k := wk{fmt.Sprintf("k%d", n%7), ts - ts%50}
		if model[k] == nil {
			model[k] = &agg{}
		}
		model[k].n++
		model[k].s += n
	}
	var want []string
	for k, a := range model {
		want = append(want, line(map[string]any{"k": k.k, "window_start": k.start, "window_end": k.start + 50, "n": a.n, "s": a.s}))
	}
	got := readSubtasks(t, out, 2)
	sameLines(t, "windows\n"+cluster.Describe(j), concat(got), want)
	for i, lines := range got {
		if len(lines) == 0 {
			t.Errorf("sink subtask %d got nothing from the rebalance", i)
		}
	}
	for _, v := range j.Vertices {
		if v.ID != "win" {
			continue
		}
		for _, s := range v.Subtasks {
			if s.RecordsIn == 0 {
				t.Errorf("window subtask %d read nothing: keys not spread over 3 subtasks", s.Index)
			}
		}
	}
}

// partition: broadcast sends every record to every subtask of the reading
// node; partition: rebalance spreads them round robin, each record once.
func TestBroadcastAndRebalance(t *testing.T) {
	const count = 100
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4})
	dir := t.TempDir()
	bc, rb := filepath.Join(dir, "broadcast"), filepath.Join(dir, "rebalance")
	id := c.Submit(t, spec(`name: partitions
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: {{count}}}}
  - name: bcast
    parallelism: 3
    partition: broadcast
    select: {id: id}
  - name: bc-sink
    parallelism: 3
    sink: {file: {path: {{bc}}}}
  - name: gen2
    parallelism: 2
    source: {datagen: {profile: sequence, count: {{count}}}}
  - name: rebal
    parallelism: 2
    partition: rebalance
    select: {id: id}
  - name: rb-sink
    parallelism: 2
    sink: {file: {path: {{rb}}}}
`, "{{bc}}", bc, "{{rb}}", rb, "{{count}}", fmt.Sprint(count)))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	var all []string
	for n := int64(0); n < count; n++ {
		all = append(all, line(map[string]any{"id": n}))
	}
	for i, lines := range readSubtasks(t, bc, 3) {
		equalLines(t, fmt.Sprintf("broadcast subtask %d", i), lines, all)
	}
	got := readSubtasks(t, rb, 2)
	sameLines(t, "rebalance\n"+cluster.Describe(j), concat(got), all)
	for i, lines := range got {
		// Each upstream subtask deals its 50 records round robin.
		if len(lines) < count/2-2 || len(lines) > count/2+2 {
			t.Errorf("rebalance subtask %d got %d of %d records: %s", i, len(lines), count, strings.Join(lines, " "))
		}
	}
}

// A job that needs more slots than the cluster has waits in SCHEDULING with
// a message saying so, and can be cancelled there.
func TestWaitsForSlots(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2, ScheduleTimeout: -1})
	id := c.Submit(t, `name: too-big
parallelism: 3
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 10}}
  - name: sink
    sink: {discard: {}}
`)
	j := c.WaitState(t, id, "SCHEDULING", 10*time.Second)
	cluster.Eventually(t, 10*time.Second, func() bool {
		j = c.Job(t, id)
		return strings.Contains(j.Message, "needs 3 slots, 2 free")
	}, "the scheduling message (last %q)", j.Message)
	c.Cancel(t, id)
	j = c.WaitState(t, id, "CANCELLED", 10*time.Second)
	for _, v := range j.Vertices {
		for _, s := range v.Subtasks {
			if s.Worker != "" {
				t.Errorf("subtask %s[%d] was placed on %s", v.ID, s.Index, s.Worker)
			}
		}
	}
	// The slots were never taken: a job that fits runs.
	id = c.Submit(t, `name: fits
parallelism: 2
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 10}}
  - name: sink
    sink: {discard: {}}
`)
	c.WaitState(t, id, "FINISHED", 20*time.Second)
}

// With a schedule timeout, a job that never gets its slots fails, saying
// why.
func TestScheduleTimeout(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2, ScheduleTimeout: 300 * time.Millisecond})
	id := c.Submit(t, `name: never-fits
parallelism: 3
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 10}}
  - name: sink
    sink: {discard: {}}
`)
	j := c.WaitState(t, id, "FAILED", 10*time.Second)
	t.Logf("cause: %s", j.FailureCause)
	if !strings.Contains(j.FailureCause, "3 slots") {
		t.Fatalf("cause %q does not say how many slots the job needs", j.FailureCause)
	}
}
