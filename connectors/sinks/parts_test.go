package sinks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// partHarness builds the file sink of a job with checkpoints for subtask
// sub of par in the given attempt, writing to dir.
func partHarness(t *testing.T, dir string, attempt int64, sub, par int) *optest.Harness {
	t.Helper()
	ctx := optest.SubtaskContext("out", dataflow.DefaultMaxParallelism, par, sub)
	ctx.JobID, ctx.Attempt, ctx.Checkpointing = "j1", attempt, true
	op, err := NewFile(&spec.Node{Name: "out", Sink: &spec.Sink{File: &spec.FileSink{Path: dir}}}, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if Path(op) != dir {
		t.Fatalf("Path %q, want %q", Path(op), dir)
	}
	return optest.New(t, op, ctx)
}

func ids(from, to int) []dataflow.Record {
	var rs []dataflow.Record
	for i := from; i < to; i++ {
		rs = append(rs, dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"id": int64(i)}), Time: dataflow.NoTime})
	}
	return rs
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "{\"id\":%d}\n", i)
	}
	return b.String()
}

// committed returns the visible files of dir and their contents.
func committed(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// hidden returns the names of dir's in-progress files.
func hidden(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func snapshot(t *testing.T, h *optest.Harness, id int64) []byte {
	t.Helper()
	b, err := h.Snapshot(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func notify(t *testing.T, h *optest.Harness, id int64) {
	t.Helper()
	must(t, h.Operator().(dataflow.CheckpointListener).NotifyCheckpointComplete(context.Background(), id))
}

func wantFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := committed(t, dir)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected visible file %s: %q", name, got[name])
		}
	}
}

// Records become visible only when the checkpoint whose barrier follows
// them completes; one part per checkpoint interval, none for an empty one.
func TestPartSinkCommitsOnCheckpointComplete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	h := partHarness(t, dir, 1, 0, 1)
	must(t, h.ProcessRecords(ids(0, 3)...))
	snapshot(t, h, 1)
	must(t, h.ProcessRecords(ids(3, 5)...))
	wantFiles(t, dir, map[string]string{}) // pre-committed is not committed
	if hs := hidden(t, dir); !slices.Equal(hs, []string{".part-j1-0-1-0.inprogress", ".part-j1-0-1-1.inprogress"}) {
		t.Fatalf("in-progress files %v", hs)
	}
	// A watermark does not publish anything.
	must(t, h.ProcessWatermark(100))
	notify(t, h, 1)
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 3)})
	snapshot(t, h, 2)
	snapshot(t, h, 3) // nothing since 2: no part
	notify(t, h, 3)   // commits 2 and 3
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 3), "part-j1-0-1-1": lines(3, 5)})
	notify(t, h, 3) // again: nothing to do
	if hs := hidden(t, dir); len(hs) != 0 {
		t.Fatalf("in-progress files left: %v", hs)
	}
	// Cancelled: what is not pre-committed stays invisible.
	must(t, h.ProcessRecords(ids(5, 6)...))
	must(t, h.Close())
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 3), "part-j1-0-1-1": lines(3, 5)})
}

// The bounded job's final checkpoint (after the final watermark) commits
// the last part; Close at the end of input commits records emitted after
// it.
func TestPartSinkEndOfInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	h := partHarness(t, dir, 1, 0, 1)
	must(t, h.ProcessRecords(ids(0, 4)...))
	must(t, h.ProcessWatermark(dataflow.MaxWatermark))
	snapshot(t, h, 7)
	notify(t, h, 7)
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 4)})
	must(t, h.ProcessRecords(ids(4, 5)...)) // emitted by an operator's Close
	must(t, h.Close())
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 4), "part-j1-0-1-1": lines(4, 5)})
	if hs := hidden(t, dir); len(hs) != 0 {
		t.Fatalf("in-progress files left: %v", hs)
	}
}

// A restore commits the parts pending in the restored checkpoint (whose
// notification never came) and discards everything else the failed attempt
// left, idempotently.
func TestPartSinkRestoreCommitsPendingAndDiscardsRest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	a1 := partHarness(t, dir, 1, 0, 1)
	must(t, a1.ProcessRecords(ids(0, 3)...))
	s1 := snapshot(t, a1, 1)
	must(t, a1.ProcessRecords(ids(3, 5)...))
	snapshot(t, a1, 2) // never completes
	must(t, a1.ProcessRecords(ids(5, 6)...))
	a1.Operator().(dataflow.Aborter).Abort() // the worker dies

	// Attempt 1 of subtask 1 (not restored here) and attempt 2 of this
	// subtask's neighbour must be left alone.
	other := filepath.Join(dir, ".part-j1-1-1-0.inprogress")
	current := filepath.Join(dir, ".part-j1-1-2-0.inprogress")
	otherJob := filepath.Join(dir, ".part-j2-0-1-0.inprogress")
	for _, p := range []string{other, current, otherJob} {
		must(t, os.WriteFile(p, []byte("x\n"), 0o644))
	}

	a2 := partHarness(t, dir, 2, 0, 2)
	must(t, a2.Restore(s1))
	must(t, a2.Open())
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 3)})
	if hs := hidden(t, dir); !slices.Equal(hs, []string{".part-j1-1-1-0.inprogress", ".part-j1-1-2-0.inprogress", ".part-j2-0-1-0.inprogress"}) {
		t.Fatalf("in-progress files after restore: %v", hs)
	}
	must(t, a2.ProcessRecords(ids(3, 6)...))
	snapshot(t, a2, 3)
	notify(t, a2, 3)
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 3), "part-j1-0-2-0": lines(3, 6)})

	// Restoring the same checkpoint again finds the part committed.
	a3 := partHarness(t, dir, 3, 0, 2)
	must(t, a3.Restore(s1))
	must(t, a3.Open())
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 3), "part-j1-0-2-0": lines(3, 6)})
}

// A zombie of attempt 1 (paused past the heartbeat timeout, then woken)
// cannot change the output of attempt 2: its commit of a checkpoint the
// restore committed finds the same bytes under the same name, and what it
// writes afterwards stays invisible and is discarded by the next restore.
func TestPartSinkZombieCannotSpoilOutput(t *testing.T) {
	for _, zombieFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("zombie commits first %v", zombieFirst), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			zombie := partHarness(t, dir, 1, 0, 1)
			must(t, zombie.ProcessRecords(ids(0, 3)...))
			s1 := snapshot(t, zombie, 1) // checkpoint 1 completes; the notification is late
			must(t, zombie.ProcessRecords(ids(3, 4)...))

			if zombieFirst {
				notify(t, zombie, 1)
			}
			a2 := partHarness(t, dir, 2, 0, 1)
			must(t, a2.Restore(s1))
			must(t, a2.Open())
			must(t, a2.ProcessRecords(ids(3, 5)...))
			s2 := snapshot(t, a2, 2)
			notify(t, a2, 2)

			// The zombie wakes up.
			notify(t, zombie, 1)
			must(t, zombie.ProcessRecords(ids(4, 9)...))
			if _, err := zombie.Snapshot(2); err != nil {
				t.Fatal(err)
			}
			must(t, zombie.Close())
			want := map[string]string{"part-j1-0-1-0": lines(0, 3), "part-j1-0-2-0": lines(3, 5)}
			wantFiles(t, dir, want)

			a3 := partHarness(t, dir, 3, 0, 1)
			must(t, a3.Restore(s2))
			must(t, a3.Open())
			wantFiles(t, dir, want)
			if hs := hidden(t, dir); len(hs) != 0 {
				t.Fatalf("in-progress files after the next restore: %v", hs)
			}
		})
	}
}

// Bytes past the pre-commit are cut off; a part shorter than its
// pre-commit, or gone altogether, is lost output and fails the restore.
func TestPartSinkRestoreChecksSizes(t *testing.T) {
	setup := func(t *testing.T) (string, []byte) {
		dir := filepath.Join(t.TempDir(), "out")
		a1 := partHarness(t, dir, 1, 0, 1)
		must(t, a1.ProcessRecords(ids(0, 3)...))
		s1 := snapshot(t, a1, 1)
		a1.Operator().(dataflow.Aborter).Abort()
		return dir, s1
	}
	inProgress := ".part-j1-0-1-0.inprogress"

	dir, s1 := setup(t)
	f, err := os.OpenFile(filepath.Join(dir, inProgress), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString(`{"id":99`)
	must(t, err)
	must(t, f.Close())
	a2 := partHarness(t, dir, 2, 0, 1)
	must(t, a2.Restore(s1))
	must(t, a2.Open())
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 3)})

	dir, s1 = setup(t)
	must(t, os.Truncate(filepath.Join(dir, inProgress), 5))
	a2 = partHarness(t, dir, 2, 0, 1)
	must(t, a2.Restore(s1))
	if err := a2.Open(); err == nil || !strings.Contains(err.Error(), "has 5 bytes") {
		t.Fatalf("short part: %v", err)
	}

	dir, s1 = setup(t)
	must(t, os.Remove(filepath.Join(dir, inProgress)))
	a2 = partHarness(t, dir, 2, 0, 1)
	must(t, a2.Restore(s1))
	if err := a2.Open(); err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Fatalf("lost part: %v", err)
	}

	dir, s1 = setup(t)
	must(t, os.WriteFile(filepath.Join(dir, "part-j1-0-1-0"), []byte("{}\n"), 0o644))
	must(t, os.Remove(filepath.Join(dir, inProgress)))
	a2 = partHarness(t, dir, 2, 0, 1)
	must(t, a2.Restore(s1))
	if err := a2.Open(); err == nil || !strings.Contains(err.Error(), "has 3 bytes") {
		t.Fatalf("wrong committed part: %v", err)
	}
}

// Restored at a lower parallelism, subtask i commits the parts of old
// subtasks j with j % n == i.
func TestPartSinkRescale(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	var states [][]byte
	for sub := range 3 {
		h := partHarness(t, dir, 1, sub, 3)
		must(t, h.ProcessRecords(ids(sub*10, sub*10+2)...))
		states = append(states, snapshot(t, h, 4))
		must(t, h.ProcessRecords(ids(sub*10+2, sub*10+3)...))
		h.Operator().(dataflow.Aborter).Abort()
	}
	for sub := range 2 {
		h := partHarness(t, dir, 2, sub, 2)
		must(t, h.Restore(states...))
		must(t, h.Open())
	}
	wantFiles(t, dir, map[string]string{"part-j1-0-1-0": lines(0, 2), "part-j1-1-1-0": lines(10, 12), "part-j1-2-1-0": lines(20, 22)})
	if hs := hidden(t, dir); len(hs) != 0 {
		t.Fatalf("in-progress files after the restore: %v", hs)
	}
}

func TestPartSinkPathIsAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	must(t, os.WriteFile(path, nil, 0o644))
	h := partHarness(t, path, 1, 0, 1)
	if err := h.Open(); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Fatalf("Open on a file: %v", err)
	}
	must(t, h.Close())
}

// Without checkpoints a savepoint flushes the file, and a state with
// pre-committed parts is refused rather than dropped.
func TestFileSinkWithoutCheckpoints(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	ctx := optest.Context("out")
	op, err := NewFile(&spec.Node{Name: "out", Sink: &spec.Sink{File: &spec.FileSink{Path: path}}}, ctx)
	must(t, err)
	h := optest.New(t, op, ctx)
	must(t, h.ProcessRecords(ids(0, 2)...))
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("written before the savepoint: %q", b)
	}
	snapshot(t, h, 1)
	if b, _ := os.ReadFile(path); string(b) != lines(0, 2) {
		t.Fatalf("after the savepoint: %q", b)
	}
	must(t, h.Close())

	pd := filepath.Join(dir, "parts")
	p := partHarness(t, pd, 1, 0, 1)
	must(t, p.ProcessRecords(ids(0, 1)...))
	st := snapshot(t, p, 1)
	op, err = NewFile(&spec.Node{Name: "out", Sink: &spec.Sink{File: &spec.FileSink{Path: path}}}, ctx)
	must(t, err)
	if err := op.(dataflow.Snapshotter).Restore([][]byte{st}); err == nil || !strings.Contains(err.Error(), "pre-committed part files") {
		t.Fatalf("restore of pending parts without checkpoints: %v", err)
	}
	empty := snapshot(t, partHarness(t, filepath.Join(dir, "empty"), 1, 0, 1), 1)
	must(t, op.(dataflow.Snapshotter).Restore([][]byte{empty, nil}))
}

func TestDecodePartStateRefusesNonParts(t *testing.T) {
	for _, s := range []string{
		`{"version":2,"pending":[]}`,
		`{"version":1,"pending":[{"checkpoint":1,"part":"../part-j-0-1-0","size":1}]}`,
		`{"version":1,"pending":[{"checkpoint":1,"part":"/etc/passwd","size":1}]}`,
		`{"version":1,"pending":[{"checkpoint":1,"part":"part-a/b-0-1-0","size":1}]}`,
		`{"version":1,"pending":[{"checkpoint":1,"part":"part--0-1-0","size":1}]}`,
		`{"version":1,"pending":[{"checkpoint":1,"part":"part-j-0-1-01","size":1}]}`,
		`{"version":1,"pending":[{"checkpoint":1,"part":"part-j-0-1-0","size":-1}]}`,
		`{"version":1,"pending":[{"checkpoint":0,"part":"part-j-0-1-0","size":1}]}`,
		`not json`,
	} {
		if _, err := decodePartState([]byte(s)); err == nil {
			t.Errorf("accepted %s", s)
		}
	}
	st, err := decodePartState([]byte(`{"version":1,"pending":[{"checkpoint":3,"part":"part-a-b-2-1-7","size":10}]}`))
	if err != nil || len(st.Pending) != 1 {
		t.Fatalf("%v %+v", err, st)
	}
	if job, sub, att, n, ok := parsePart(st.Pending[0].Part); !ok || job != "a-b" || sub != 2 || att != 1 || n != 7 {
		t.Fatalf("parsePart: %s %d %d %d %v", job, sub, att, n, ok)
	}
}

func FuzzDecodePartState(f *testing.F) {
	f.Add([]byte(`{"version":1,"pending":[{"checkpoint":3,"part":"part-j1-0-1-7","size":10}]}`))
	f.Add([]byte(`{"version":1,"pending":[]}`))
	f.Add([]byte(`{"version":1,"pending":[{"checkpoint":1,"part":"../x","size":1}]}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodePartState(b)
		if err != nil {
			return
		}
		for _, p := range st.Pending {
			if filepath.Base(p.Part) != p.Part || !strings.HasPrefix(p.Part, partPrefix) || strings.ContainsAny(p.Part, `/\`) || p.Size < 0 {
				t.Fatalf("accepted %+v", p)
			}
			if _, _, _, _, ok := parsePart(p.Part); !ok {
				t.Fatalf("accepted unparsable %q", p.Part)
			}
		}
	})
}

// A pre-commit that cannot write its part fails every later record and
// checkpoint: the task goes on after a declined checkpoint, and the part's
// records are in no pending list, so only a restore may continue.
func TestPartSinkFailedPreCommitSticks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	h := partHarness(t, dir, 1, 0, 1)
	must(t, h.ProcessRecords(ids(0, 3)...))
	must(t, h.Operator().(*partSink).cur.Close()) // the write at the barrier fails
	if _, err := h.Snapshot(1); err == nil {
		t.Fatal("pre-commit of an unwritable part succeeded")
	}
	if err := h.ProcessRecords(ids(3, 4)...); err == nil {
		t.Fatal("record after a failed pre-commit accepted")
	}
	if _, err := h.Snapshot(2); err == nil {
		t.Fatal("checkpoint after a failed pre-commit succeeded")
	}
	must(t, h.ProcessWatermark(dataflow.MaxWatermark))
	if err := h.Close(); err == nil {
		t.Fatal("Close at end of input after a failed pre-commit succeeded")
	}
	wantFiles(t, dir, map[string]string{})
}
