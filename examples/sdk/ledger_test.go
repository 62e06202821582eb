package sdkexamples

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/cluster"
	"github.com/weir-stream/weir/internal/registry"
)

// ledgerOp builds example.ledger as a worker does, for subtask i of n.
func ledgerOp(t *testing.T, dir string, attempt int64, i, n int) dataflow.Operator {
	t.Helper()
	e, ok := registry.Lookup("example.ledger")
	if !ok {
		t.Fatal("example.ledger is not registered")
	}
	ctx := &dataflow.Context{JobID: "job1", Node: "ledger", Subtask: i, Parallelism: n, Attempt: attempt, Checkpointing: true}
	op, err := e.New(spec.Config{"dir": dir}, ctx)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func write(t *testing.T, op dataflow.Operator, from, to int) {
	t.Helper()
	for n := from; n < to; n++ {
		r := dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"n": int64(n)})}
		if err := op.Process(&r, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// committedNumbers reads the ledger's committed "n"s and fails on a
// duplicate.
func committedNumbers(t *testing.T, dir string) []int {
	t.Helper()
	lines, err := ReadLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []int
	for _, l := range lines {
		var v struct{ N int }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		ns = append(ns, v.N)
	}
	slices.Sort(ns)
	return ns
}

func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// A crash between pre-commit and the checkpoint's completion, with no
// abort (the process died): the restore from the last completed checkpoint
// commits what it lists, deletes the transactions no completed checkpoint
// covers, and the replay writes their records once.
func TestLedgerRecoversAfterACrash(t *testing.T) {
	dir := t.TempDir()
	op := ledgerOp(t, dir, 0, 0, 1)
	if err := op.Open(nil); err != nil {
		t.Fatal(err)
	}
	snap := op.(dataflow.Snapshotter)
	write(t, op, 0, 10)
	st1, err := snap.Snapshot(1) // checkpoint 1 completes, but its notification never arrives
	if err != nil {
		t.Fatal(err)
	}
	write(t, op, 10, 20)
	if _, err := snap.Snapshot(2); err != nil { // checkpoint 2 never completes
		t.Fatal(err)
	}
	write(t, op, 20, 25) // open when the process dies
	if err := op.(interface{ Close(dataflow.Output) error }).Close(nil); err == nil {
		// Close aborts the open transaction; a crash would not: put the
		// file back to prove Recover deletes it too.
		_ = os.WriteFile(filepath.Join(dir, "staging", "job1-0-0-2.jsonl"), []byte(`{"n":24}`+"\n"), 0o644)
	}
	if got := committedNumbers(t, dir); len(got) != 0 {
		t.Fatalf("committed before any checkpoint completed: %v", got)
	}

	// Attempt 1 restores checkpoint 1.
	op2 := ledgerOp(t, dir, 1, 0, 1)
	if err := op2.(dataflow.Snapshotter).Restore([][]byte{st1}); err != nil {
		t.Fatal(err)
	}
	if err := op2.Open(nil); err != nil {
		t.Fatal(err)
	}
	if got := committedNumbers(t, dir); !slices.Equal(got, upTo(10)) {
		t.Fatalf("after the restore committed %v, want 0..9", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "staging")); len(ents) != 0 {
		t.Fatalf("staging still holds %d transactions no checkpoint covers", len(ents))
	}
	write(t, op2, 10, 25) // the replay
	if _, err := op2.(dataflow.Snapshotter).Snapshot(3); err != nil {
		t.Fatal(err)
	}
	if err := op2.(dataflow.CheckpointListener).NotifyCheckpointComplete(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if got := committedNumbers(t, dir); !slices.Equal(got, upTo(25)) {
		t.Fatalf("committed %v, want 0..24 once each", got)
	}
	// A second restore of checkpoint 1 (say the first restore died after
	// its commit) commits again without error: Commit is idempotent.
	op3 := ledgerOp(t, dir, 2, 0, 1)
	if err := op3.(dataflow.Snapshotter).Restore([][]byte{st1}); err != nil {
		t.Fatal(err)
	}
	if err := op3.Open(nil); err != nil {
		t.Fatalf("recommit of a committed transaction: %v", err)
	}
}

// A transaction that a completed checkpoint lists but that is gone fails
// the restore loudly instead of losing its records silently.
func TestLedgerLostTransactionFailsTheRestore(t *testing.T) {
	dir := t.TempDir()
	op := ledgerOp(t, dir, 0, 0, 1)
	if err := op.Open(nil); err != nil {
		t.Fatal(err)
	}
	write(t, op, 0, 3)
	st, err := op.(dataflow.Snapshotter).Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "staging", "job1-0-0-0.jsonl")); err != nil {
		t.Fatal(err)
	}
	op2 := ledgerOp(t, dir, 1, 0, 1)
	if err := op2.(dataflow.Snapshotter).Restore([][]byte{st}); err != nil {
		t.Fatal(err)
	}
	err = op2.Open(nil)
	if err == nil || !strings.Contains(err.Error(), "job1-0-0-0.jsonl is neither staged nor committed") || !strings.Contains(err.Error(), "belongs to a completed checkpoint") {
		t.Fatalf("error %v", err)
	}
}

const ledgerJob = `name: ledger
parallelism: 2
checkpoint: {interval: 50ms}
pipeline:
  - name: numbers
    source: {connector: example.sequence, config: {splits: 4, count: %d, every: 5ms}}
  - name: by-seq
    key_by: seq
  - name: ledger
    sink: {connector: example.ledger, config: {dir: %q}}
`

// example.sequence into example.ledger on an in-process cluster: a worker
// is lost while numbers stream, the job restores from its last checkpoint
// (the source rewinds each split to its checkpointed position, the sink
// commits the checkpoint's transactions and deletes the rest), and the
// ledger holds every number of every sequence exactly once.
func TestSequenceIntoLedgerExactlyOnceAcrossWorkerLoss(t *testing.T) {
	const count = 400
	dir := t.TempDir()
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4})
	job := c.Submit(t, fmt.Sprintf(ledgerJob, count, dir))
	c.WaitState(t, job, "RUNNING", 30*time.Second)
	ctx := context.Background()
	cl := c.Client()
	cluster.Eventually(t, 60*time.Second, func() bool {
		cs, err := cl.Checkpoints(ctx, job)
		lines, _ := ReadLedger(dir)
		return err == nil && cs.Counts.Completed >= 2 && len(lines) > 0
	}, "checkpoints to complete and commit output")
	subs, err := cl.Subtasks(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for _, st := range subs.Subtasks {
		for i := range 2 {
			if st.Vertex == "ledger" && st.Worker == c.Worker(i).ID() {
				victim = i
			}
		}
	}
	if victim < 0 {
		t.Fatalf("no worker runs the ledger: %+v", subs.Subtasks)
	}
	c.KillWorker(victim)
	j := c.WaitState(t, job, "FINISHED", 120*time.Second)
	rs, err := cl.Restarts(ctx, job)
	if err != nil || len(rs.Restarts) == 0 {
		t.Fatalf("the job did not restart after the worker loss (%v): %s", err, cluster.Describe(j))
	}
	checkLedger(t, dir, count)
}

// checkLedger asserts that the ledger holds every number below count of
// the 4 sequences exactly once, and no staged transaction is left.
func checkLedger(t *testing.T, dir string, count int) {
	t.Helper()
	lines, err := ReadLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, l := range lines {
		var v struct {
			Seq string
			N   int
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		seen[fmt.Sprintf("%s/%d", v.Seq, v.N)]++
	}
	lost, dup := 0, 0
	for seq := range 4 {
		for n := range count {
			switch k := seen[fmt.Sprintf("seq-%d/%d", seq, n)]; {
			case k == 0:
				lost++
			case k > 1:
				dup += k - 1
			}
		}
	}
	if lost != 0 || dup != 0 || len(lines) != 4*count {
		t.Fatalf("ledger holds %d records, want %d: %d lost, %d duplicated", len(lines), 4*count, lost, dup)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "staging")); len(ents) != 0 {
		t.Fatalf("staging still holds %d transactions after the job finished", len(ents))
	}
}

// Rescaled from 2 subtasks to 1: the one subtask commits both old
// subtasks' pending transactions and deletes both old subtasks'
// leftovers (Recovery.Subtasks lists them), but not another job's.
func TestLedgerRescaleOwnsTheOldSubtasks(t *testing.T) {
	dir := t.TempDir()
	var states [][]byte
	for i := range 2 {
		op := ledgerOp(t, dir, 0, i, 2)
		if err := op.Open(nil); err != nil {
			t.Fatal(err)
		}
		write(t, op, i*10, i*10+10)
		st, err := op.(dataflow.Snapshotter).Snapshot(1)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
		write(t, op, 100+i, 101+i) // open at the crash: no abort, no close
		op.(dataflow.Aborter).Abort()
		// Abort deleted the open file; a crash would have left it.
		if err := os.WriteFile(filepath.Join(dir, "staging", fmt.Sprintf("job1-%d-0-1.jsonl", i)), []byte(`{"n":100}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, "staging", "job2-1-0-0.jsonl")
	if err := os.WriteFile(other, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	op := ledgerOp(t, dir, 1, 0, 1)
	if err := op.(dataflow.Snapshotter).Restore(states); err != nil {
		t.Fatal(err)
	}
	if err := op.Open(nil); err != nil {
		t.Fatal(err)
	}
	if got := committedNumbers(t, dir); !slices.Equal(got, upTo(20)) {
		t.Fatalf("committed %v, want 0..19", got)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "staging"))
	if len(ents) != 1 || ents[0].Name() != "job2-1-0-0.jsonl" {
		t.Fatalf("staging holds %v, want only the other job's file", ents)
	}
}

// Stopped with a savepoint at parallelism 2 and resumed from it at 3: the
// splits and the sink's pending transactions move to their new subtasks
// (split k to k mod 3, old sink subtask j to j mod 3), and the ledger
// still holds every number exactly once.
func TestSequenceIntoLedgerExactlyOnceAcrossRescale(t *testing.T) {
	const count = 300
	dir := t.TempDir()
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4})
	ctx := context.Background()
	cl := c.Client()
	job := c.Submit(t, fmt.Sprintf(ledgerJob, count, dir))
	c.WaitState(t, job, "RUNNING", 30*time.Second)
	cluster.Eventually(t, 60*time.Second, func() bool {
		lines, _ := ReadLedger(dir)
		return len(lines) > 0
	}, "committed output")
	sp, err := cl.TriggerSavepoint(ctx, job, true)
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 60*time.Second, func() bool {
		s, err := cl.Savepoint(ctx, job, sp.RequestID)
		if err == nil && s.Status == "FAILED" {
			t.Fatalf("savepoint failed: %s", s.Failure)
		}
		if err == nil && s.Status == "COMPLETED" {
			sp = s
			return true
		}
		return false
	}, "the savepoint")
	c.WaitState(t, job, "FINISHED", 30*time.Second)
	if lines, _ := ReadLedger(dir); len(lines) >= 4*count {
		t.Fatalf("the first job wrote all %d numbers before its savepoint: nothing left to resume", len(lines))
	}
	job2, err := cl.SubmitFromSavepoint(ctx, []byte(strings.Replace(fmt.Sprintf(ledgerJob, count, dir), "parallelism: 2", "parallelism: 3", 1)), sp.Location)
	if err != nil {
		t.Fatal(err)
	}
	c.WaitState(t, job2, "FINISHED", 120*time.Second)
	checkLedger(t, dir, count)
}
