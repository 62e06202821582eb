package coordinator_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/api"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// State is matched to nodes by name, so a savepoint with state for a node
// the new spec lacks (renamed, removed) would drop it without a word. The
// restore is refused, naming the node, unless the user allows it.
func TestRestoreRefusesStateOfMissingNodes(t *testing.T) {
	base, root, _ := pathsCoordinator(t)
	ctx := context.Background()
	st, err := checkpoint.OpenStorage("file://" + root + "/sp-1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state := []byte("window state")
	w, err := st.Create(ctx, "counts-0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(state); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	md := &checkpointpb.Metadata{FormatVersion: 1, JobId: "j0", CheckpointId: 1, Savepoint: true, MaxParallelism: 128,
		Subtasks: []*checkpointpb.SubtaskState{{VertexId: "gen", Subtask: 0, Parallelism: 1, Operators: []*checkpointpb.OperatorState{
			{Node: "gen"}, // no state: nothing to lose
			{Node: "counts", Handle: &checkpointpb.StateHandle{Path: "counts-0", Size: int64(len(state)), Crc32C: checkpoint.CRC32C(state)}},
		}}}}
	if err := checkpoint.WriteMetadata(ctx, st, "", md); err != nil {
		t.Fatal(err)
	}
	from := url.QueryEscape("file://" + root + "/sp-1")
	renamed := fileSinkJob("renamed", root+"/out", "") // nodes gen and out: "counts" is gone
	resp, data := do(t, "POST", base+"/api/v1/jobs?from_savepoint="+from, renamed)
	e := wantError(t, resp, data, http.StatusBadRequest, api.CodeBadRequest)
	if !strings.Contains(e.Message, "counts") || !strings.Contains(e.Message, "allow_non_restored_state") {
		t.Errorf("message %q does not name the node and the way out", e.Message)
	}
	resp, data = do(t, "POST", base+"/api/v1/jobs?allow_non_restored_state=maybe&from_savepoint="+from, renamed)
	wantError(t, resp, data, http.StatusBadRequest, api.CodeBadRequest)

	resp, data = do(t, "POST", base+"/api/v1/jobs?allow_non_restored_state=true&from_savepoint="+from, renamed)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("allowed: %d %s", resp.StatusCode, data)
	}
	kept := strings.Replace(fileSinkJob("kept", root+"/out", ""), "name: out", "name: counts", 1)
	resp, data = do(t, "POST", base+"/api/v1/jobs?from_savepoint="+from, kept)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("same node names: %d %s", resp.StatusCode, data)
	}
}
