package command

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-stream/weir/checkpoint"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// runCheckpoint runs `weir checkpoint args...` in-process, like run, also
// while the verb is not yet registered in newRoot.
func runCheckpoint(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb}
	root := newRoot(g)
	registered := false
	for _, c := range root.Commands() {
		registered = registered || c.Name() == "checkpoint"
	}
	if !registered {
		c := newCheckpointCommand(g)
		root.AddCommand(c)
		wrapArgs(c)
	}
	root.SetArgs(append([]string{"checkpoint"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	code := ExitOK
	if err := root.ExecuteContext(t.Context()); err != nil {
		errb.WriteString("error: " + err.Error() + "\n")
		code = ExitFailed
		var u usageError
		if errors.As(err, &u) {
			code = ExitUsage
		}
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func mustRunCheckpoint(t *testing.T, want int, args ...string) result {
	t.Helper()
	r := runCheckpoint(t, args...)
	if r.code != want {
		t.Fatalf("weir checkpoint %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// writeTestCheckpoint writes checkpoint id of job "job-1" under root: a
// Kafka source with two partitions per subtask, a keyed window, and a
// transactional sink. grow scales state and offsets.
func writeTestCheckpoint(t *testing.T, root string, id int64, grow int) string {
	t.Helper()
	ctx := t.Context()
	st, err := checkpoint.OpenStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := checkpoint.CheckpointDir("job-1", id)
	m := &checkpointpb.Metadata{JobId: "job-1", JobName: "ip-visits", CheckpointId: id,
		TriggerUnixMs: 1_700_000_000_000 + id*1000, CompleteUnixMs: 1_700_000_000_250 + id*1000, MaxParallelism: 128,
		JobSpec: []byte("name: ip-visits\n")}
	state := func(vertex string, sub int, node string, n int) *checkpointpb.StateHandle {
		h, err := checkpoint.WriteState(ctx, st, dir, checkpoint.StateFileName(vertex, sub, node), bytes.Repeat([]byte{byte(sub)}, n))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for sub := range 2 {
		m.Subtasks = append(m.Subtasks, &checkpointpb.SubtaskState{VertexId: "source", Subtask: int32(sub), Parallelism: 2,
			Operators: []*checkpointpb.OperatorState{{Node: "source", Handle: state("source", sub, "source", 40),
				Offsets: []*checkpointpb.KafkaOffset{
					{Topic: "access-log", Partition: int32(2*sub + 1), Offset: int64(1000*grow + sub)},
					{Topic: "access-log", Partition: int32(2 * sub), Offset: int64(500 * grow)},
				}}}})
	}
	for sub := range 2 {
		m.Subtasks = append(m.Subtasks, &checkpointpb.SubtaskState{VertexId: "count-by-ip", Subtask: int32(sub), Parallelism: 2,
			Operators: []*checkpointpb.OperatorState{
				{Node: "count-by-ip", Handle: state("count-by-ip", sub, "count-by-ip", 1500*grow), Keys: int64(10 * grow)},
				{Node: "sink", Handle: state("count-by-ip", sub, "sink", 64),
					PendingTransactions: []*checkpointpb.SinkTransaction{{TransactionalId: "weir-job-1-sink-" + string(rune('0'+sub)),
						ProducerId: int64(4000 + sub), Epoch: 3, CheckpointId: id}}},
			}})
	}
	if err := checkpoint.WriteMetadata(ctx, st, dir, m); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, filepath.FromSlash(dir))
}

func TestCheckpointInspect(t *testing.T) {
	root := t.TempDir()
	dir := writeTestCheckpoint(t, root, 7, 1)
	uri, err := checkpoint.FileURI(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{uri, dir, uri + "/_metadata", dir + "/"} {
		r := mustRunCheckpoint(t, ExitOK, "inspect", arg)
		for _, want := range []string{
			"Location:   " + uri, "Job:        job-1 (ip-visits)", "Checkpoint: 7", "(took 250ms)",
			"State:      3.1 KiB in 6 files, 20 keys (files checked: size)",
			"count-by-ip  1/2      count-by-ip  1.5 KiB", "ok",
			"Totals per operator:", "count-by-ip  count-by-ip  2         2.9 KiB  20",
			"Kafka offsets (next offset to read):", "source  1/2      source  access-log  3          1001",
			"Pending sink transactions", "weir-job-1-sink-1  4001         3      7",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("inspect %s: output lacks %q:\n%s", arg, want, r.stdout)
			}
		}
	}

	r := mustRunCheckpoint(t, ExitOK, "inspect", "-o", "json", "--verify", dir)
	var in checkpoint.Inspection
	decode(t, r, &in)
	if in.JobID != "job-1" || in.CheckpointID != 7 || in.Kind != "checkpoint" || in.FileCheck != "crc32c" ||
		in.StateFiles != 6 || in.Keys != 20 || len(in.Operators) != 3 || in.Problems != 0 {
		t.Fatalf("json: %+v", in)
	}
	src := in.Operators[0]
	if src.Vertex != "source" || len(src.Subtasks) != 2 || len(src.Subtasks[1].Offsets) != 2 ||
		src.Subtasks[1].Offsets[0] != (checkpoint.OffsetInspection{Topic: "access-log", Partition: 2, Offset: 500}) ||
		src.Subtasks[1].Status != "ok" {
		t.Fatalf("source: %+v", src)
	}
	if tx := in.Operators[2].Subtasks[0].PendingTransactions; len(tx) != 1 || tx[0].ProducerID != 4000 || tx[0].CheckpointID != 7 {
		t.Fatalf("sink transactions: %+v", tx)
	}
	if !strings.Contains(r.stdout, `"state_bytes": 3208`) || !strings.Contains(r.stdout, `"pending_transactions": []`) {
		t.Fatalf("json field names or empty lists changed:\n%s", r.stdout)
	}
}

func TestCheckpointInspectSavepoint(t *testing.T) {
	root := t.TempDir()
	st, err := checkpoint.OpenStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := checkpoint.SavepointDir("job-1", 3)
	if err := checkpoint.WriteMetadata(t.Context(), st, dir, &checkpointpb.Metadata{JobId: "job-1", CheckpointId: 3, Savepoint: true}); err != nil {
		t.Fatal(err)
	}
	r := mustRunCheckpoint(t, ExitOK, "inspect", filepath.Join(root, dir))
	if !strings.Contains(r.stdout, "Savepoint:  3") || !strings.Contains(r.stdout, "Triggered:  -") {
		t.Fatalf("savepoint:\n%s", r)
	}
}

func TestCheckpointInspectDamagedStateFiles(t *testing.T) {
	dir := writeTestCheckpoint(t, t.TempDir(), 7, 1)
	// Same size, different bytes: only --verify notices.
	flipped := filepath.Join(dir, "count-by-ip-0-count-by-ip")
	data, err := os.ReadFile(flipped)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(flipped, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRunCheckpoint(t, ExitOK, "inspect", dir)
	r := mustRunCheckpoint(t, ExitFailed, "inspect", "--verify", dir)
	if !strings.Contains(r.stdout, "corrupt") || !strings.Contains(r.stdout, "Problems:") ||
		!strings.Contains(r.stdout, "count-by-ip-0-count-by-ip: checkpoint: corrupt: crc32c") ||
		!strings.Contains(r.stderr, "1 of 6 state files") {
		t.Fatalf("--verify on a flipped byte:\n%s", r)
	}
	// A missing file is found by the default size check.
	if err := os.Remove(filepath.Join(dir, "source-1-source")); err != nil {
		t.Fatal(err)
	}
	r = mustRunCheckpoint(t, ExitFailed, "inspect", "-o", "json", dir)
	var in checkpoint.Inspection
	decode(t, r, &in)
	if in.Problems != 1 || in.Operators[0].Subtasks[1].Status != "missing" ||
		!strings.Contains(in.Operators[0].Subtasks[1].Problem, "source-1-source") {
		t.Fatalf("missing file: %+v", in.Operators[0].Subtasks[1])
	}
}

func TestCheckpointInspectBadMetadata(t *testing.T) {
	dir := writeTestCheckpoint(t, t.TempDir(), 7, 1)
	meta := filepath.Join(dir, "_metadata")
	data, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(meta, data, 0o644); err != nil {
		t.Fatal(err)
	}
	uri, _ := checkpoint.FileURI(meta)
	for _, args := range [][]string{{"inspect", dir}, {"inspect", "-o", "json", dir}, {"diff", dir, dir}} {
		r := mustRunCheckpoint(t, ExitFailed, args...)
		if r.stdout != "" || !strings.Contains(r.stderr, uri) || !strings.Contains(r.stderr, "checksum mismatch") {
			t.Fatalf("corrupt metadata, %v:\n%s", args, r)
		}
	}
	missing := filepath.Join(t.TempDir(), "chk-9")
	r := mustRunCheckpoint(t, ExitFailed, "inspect", missing)
	if !strings.Contains(r.stderr, "not found") || !strings.Contains(r.stderr, "chk-9/_metadata") ||
		!strings.Contains(r.stderr, "is "+missing+" a checkpoint directory") {
		t.Fatalf("missing metadata:\n%s", r)
	}
	r = mustRunCheckpoint(t, ExitFailed, "inspect", "ftp://bucket/chk-1")
	if !strings.Contains(r.stderr, `unknown scheme "ftp"`) {
		t.Fatalf("unknown scheme:\n%s", r)
	}
}

func TestCheckpointDiff(t *testing.T) {
	root := t.TempDir()
	from := writeTestCheckpoint(t, root, 7, 1)
	to := writeTestCheckpoint(t, root, 9, 3)
	r := mustRunCheckpoint(t, ExitOK, "diff", from, to)
	for _, want := range []string{
		"From:  checkpoint 7 of job job-1", "To:    checkpoint 9 of job job-1",
		"State:  3.1 KiB -> 9.0 KiB (+5.9 KiB), keys 20 -> 60 (+40)",
		"Read:   6000 records",
		"count-by-ip  count-by-ip  -       2 -> 2       2.9 KiB     8.8 KiB   +5.9 KiB     20         60       +40",
		"source  source  access-log  1          1000  3000  +2000",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("diff output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRunCheckpoint(t, ExitOK, "diff", "-o", "json", from, to)
	var d checkpoint.Diff
	decode(t, r, &d)
	if d.From.CheckpointID != 7 || d.To.CheckpointID != 9 || d.Records != 6000 || len(d.Operators) != 3 || len(d.Offsets) != 4 ||
		d.Keys != (checkpoint.Delta{From: 20, To: 60, Delta: 40}) || d.Operators[1].StateBytes.Delta != 6000 ||
		d.Offsets[0] != (checkpoint.OffsetDiff{Vertex: "source", Node: "source", Topic: "access-log", Partition: 0, Offset: checkpoint.Delta{From: 500, To: 1500, Delta: 1000}}) {
		t.Fatalf("json: %+v", d)
	}
}

func TestCheckpointUsageErrors(t *testing.T) {
	dir := writeTestCheckpoint(t, t.TempDir(), 1, 1)
	for _, args := range [][]string{
		{"inspect"},
		{"inspect", dir, dir},
		{"inspect", "-o", "yaml", dir},
		{"diff", dir},
		{"diff", "-o", "yaml", dir, dir},
		{"inspect", "--no-such-flag", dir},
		{"nonsense"},
	} {
		mustRunCheckpoint(t, ExitUsage, args...)
	}
	r := mustRunCheckpoint(t, ExitOK)
	if !strings.Contains(r.stdout, "inspect") || !strings.Contains(r.stdout, "diff") {
		t.Fatalf("bare group verb should print help:\n%s", r)
	}
}

func TestCkptBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", -2048: "-2.0 KiB"} {
		if got := ckptBytes(n); got != want {
			t.Errorf("ckptBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
