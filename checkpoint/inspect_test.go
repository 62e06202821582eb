package checkpoint_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-stream/weir/checkpoint"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

func TestInspectChecksFiles(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	st, err := checkpoint.OpenStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := checkpoint.CheckpointDir("j", 4)
	var ops []*checkpointpb.OperatorState
	for _, n := range []string{"a", "b", "c"} {
		h, err := checkpoint.WriteState(ctx, st, dir, checkpoint.StateFileName("v", 0, n), []byte("state of "+n))
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, &checkpointpb.OperatorState{Node: n, Handle: h, Keys: 2})
	}
	ops = append(ops, &checkpointpb.OperatorState{Node: "stateless"})
	m := &checkpointpb.Metadata{JobId: "j", CheckpointId: 4, TriggerUnixMs: 10, CompleteUnixMs: 5,
		Subtasks: []*checkpointpb.SubtaskState{{VertexId: "v", Parallelism: 1, Operators: ops}}}
	if err := checkpoint.WriteMetadata(ctx, st, dir, m); err != nil {
		t.Fatal(err)
	}
	// b: same size, other bytes; c: gone.
	if err := os.WriteFile(filepath.Join(root, dir, "v-0-b"), []byte("state of B"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, dir, "v-0-c")); err != nil {
		t.Fatal(err)
	}
	status := func(in *checkpoint.Inspection) (s []string) {
		for _, o := range in.Operators {
			s = append(s, o.Node+"="+o.Subtasks[0].Status)
		}
		return s
	}
	for _, tc := range []struct {
		check    checkpoint.FileCheck
		want     []string
		problems int
	}{
		{checkpoint.CheckNone, []string{"a=unchecked", "b=unchecked", "c=unchecked", "stateless=no state"}, 0},
		{checkpoint.CheckSize, []string{"a=ok", "b=ok", "c=missing", "stateless=no state"}, 1},
		{checkpoint.CheckCRC, []string{"a=ok", "b=corrupt", "c=missing", "stateless=no state"}, 2},
	} {
		in, err := checkpoint.Inspect(ctx, st, dir, tc.check)
		if err != nil {
			t.Fatal(err)
		}
		if got := status(in); !equalStrings(got, tc.want) || in.Problems != tc.problems || in.FileCheck != tc.check.String() {
			t.Errorf("%v: statuses %v, problems %d; want %v, %d", tc.check, got, in.Problems, tc.want, tc.problems)
		}
		if in.StateFiles != 3 || in.Keys != 6 || in.DurationMs != 0 || in.Kind != "checkpoint" {
			t.Errorf("%v: %+v", tc.check, in)
		}
	}
	if _, err := checkpoint.Inspect(ctx, st, "j/chk-5", checkpoint.CheckNone); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("missing checkpoint: %v", err)
	}
	if checkpoint.FileCheck(9).String() != "FileCheck(9)" {
		t.Fatal(checkpoint.FileCheck(9).String())
	}
}

func sub(vertex string, idx, par int32, ops ...*checkpointpb.OperatorState) *checkpointpb.SubtaskState {
	return &checkpointpb.SubtaskState{VertexId: vertex, Subtask: idx, Parallelism: par, Operators: ops}
}

func src(offsets ...int64) *checkpointpb.OperatorState {
	op := &checkpointpb.OperatorState{Node: "src", Handle: &checkpointpb.StateHandle{Path: "x", Size: 10}}
	for i := 0; i+1 < len(offsets); i += 2 {
		op.Offsets = append(op.Offsets, &checkpointpb.KafkaOffset{Topic: "t", Partition: int32(offsets[i]), Offset: offsets[i+1]})
	}
	return op
}

func TestDiffRescaledAndChangedJob(t *testing.T) {
	from := checkpoint.InspectMetadata(&checkpointpb.Metadata{JobId: "j", CheckpointId: 1, Subtasks: []*checkpointpb.SubtaskState{
		sub("src", 0, 1, src(0, 100, 1, 200, 2, 300)),
		sub("old", 0, 1, &checkpointpb.OperatorState{Node: "old", Keys: 5, Handle: &checkpointpb.StateHandle{Path: "o", Size: 50}}),
	}}, "from")
	to := checkpoint.InspectMetadata(&checkpointpb.Metadata{JobId: "j", CheckpointId: 3, Savepoint: true, Subtasks: []*checkpointpb.SubtaskState{
		// Rescaled to 2: partitions moved between subtasks; partition 2 gone, 3 new.
		sub("src", 1, 2, src(1, 260)),
		sub("src", 0, 2, src(0, 150, 3, 7)),
		sub("new", 0, 1, &checkpointpb.OperatorState{Node: "new", Keys: 1}),
	}}, "to")
	if to.Kind != "savepoint" || to.Operators[0].Subtasks[0].Subtask != 0 || to.Operators[0].Parallelism != 2 {
		t.Fatalf("inspection: %+v", to.Operators[0])
	}
	d := checkpoint.DiffInspections(from, to)
	var ops []string
	for _, o := range d.Operators {
		ops = append(ops, o.Vertex+"/"+o.Node+":"+o.Change)
	}
	if !equalStrings(ops, []string{"src/src:", "new/new:added", "old/old:removed"}) {
		t.Fatalf("operators %v", ops)
	}
	if o := d.Operators[0]; o.Parallelism != (checkpoint.Delta{From: 1, To: 2, Delta: 1}) || o.StateBytes != (checkpoint.Delta{From: 10, To: 20, Delta: 10}) {
		t.Fatalf("src: %+v", o)
	}
	if o := d.Operators[2]; o.Keys != (checkpoint.Delta{From: 5, To: 0, Delta: -5}) || o.StateBytes.Delta != -50 {
		t.Fatalf("old: %+v", o)
	}
	want := []checkpoint.OffsetDiff{
		{Vertex: "src", Node: "src", Topic: "t", Partition: 0, Offset: checkpoint.Delta{From: 100, To: 150, Delta: 50}},
		{Vertex: "src", Node: "src", Topic: "t", Partition: 1, Offset: checkpoint.Delta{From: 200, To: 260, Delta: 60}},
		{Vertex: "src", Node: "src", Topic: "t", Partition: 2, Change: "removed", Offset: checkpoint.Delta{From: 300}},
		{Vertex: "src", Node: "src", Topic: "t", Partition: 3, Change: "added", Offset: checkpoint.Delta{To: 7}},
	}
	if len(d.Offsets) != len(want) {
		t.Fatalf("offsets %+v", d.Offsets)
	}
	for i := range want {
		if d.Offsets[i] != want[i] {
			t.Errorf("offset %d: %+v, want %+v", i, d.Offsets[i], want[i])
		}
	}
	if d.Records != 110 || d.From.URI != "from" || d.To.Kind != "savepoint" {
		t.Fatalf("diff: %+v", d)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
