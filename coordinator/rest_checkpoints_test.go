package coordinator_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
)

// TestRESTCheckpointContracts checks every checkpoint, savepoint and
// restart path: bad input answers a JSON error, never 500.
func TestRESTCheckpointContracts(t *testing.T) {
	c := startCoordinator(t, clock.NewManual(t0))
	base := "http://" + c.HTTPAddr()
	cl := api.NewClient(base)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpecWith("waits", "checkpoint: {interval: 5s}\n", 1)) // no workers: SCHEDULING
	if err != nil {
		t.Fatal(err)
	}

	t.Run("empty summaries", func(t *testing.T) {
		cs, err := cl.Checkpoints(ctx, id)
		if err != nil || cs.History == nil || len(cs.History) != 0 || cs.Latest != nil || !cs.Config.Enabled || cs.Config.IntervalMs != 5000 ||
			cs.Config.TimeoutMs != 600000 || !strings.HasPrefix(cs.Config.Storage, "file://") {
			t.Fatalf("%+v %v", cs, err)
		}
		rs, err := cl.Restarts(ctx, id)
		if err != nil || rs.Restarts == nil || len(rs.Restarts) != 0 || rs.Strategy == "" {
			t.Fatalf("%+v %v", rs, err)
		}
		resp, data := do(t, "GET", base+"/api/v1/jobs/"+id+"/savepoints", "")
		if resp.StatusCode != 200 || !strings.Contains(string(data), `"savepoints": []`) {
			t.Fatalf("%d %s", resp.StatusCode, data)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"GET", "/api/v1/jobs/nope/checkpoints", "", 404, api.CodeNotFound},
			{"GET", "/api/v1/jobs/nope/checkpoints/1", "", 404, api.CodeNotFound},
			{"GET", "/api/v1/jobs/nope/restarts", "", 404, api.CodeNotFound},
			{"GET", "/api/v1/jobs/nope/savepoints", "", 404, api.CodeNotFound},
			{"GET", "/api/v1/jobs/nope/savepoints/sp-1", "", 404, api.CodeNotFound},
			{"POST", "/api/v1/jobs/nope/savepoints", "", 404, api.CodeNotFound},
			{"GET", "/api/v1/jobs/" + id + "/checkpoints/abc", "", 400, api.CodeBadRequest},
			{"GET", "/api/v1/jobs/" + id + "/checkpoints/-3", "", 400, api.CodeBadRequest},
			{"GET", "/api/v1/jobs/" + id + "/checkpoints/99999999999999999999", "", 400, api.CodeBadRequest},
			{"GET", "/api/v1/jobs/" + id + "/checkpoints/7", "", 404, api.CodeNotFound},
			{"GET", "/api/v1/jobs/" + id + "/savepoints/sp-nope", "", 404, api.CodeNotFound},
			{"POST", "/api/v1/jobs/" + id + "/savepoints", "{not json", 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs/" + id + "/savepoints", `{"stop": "yes"}`, 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs/" + id + "/savepoints", `{"stpo": true}`, 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs/" + id + "/savepoints", strings.Repeat(" ", 5000) + "{}", 400, api.CodeBadRequest},
			// Not running yet.
			{"POST", "/api/v1/jobs/" + id + "/savepoints", `{"stop": true}`, 409, api.CodeConflict},
			{"POST", "/api/v1/jobs/" + id + "/savepoints", "", 409, api.CodeConflict},
			{"POST", "/api/v1/jobs?from_savepoint=", string(jobSpec("x", 1)), 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs?from_savepoint=" + url.QueryEscape("file:///does/not/exist"), string(jobSpec("x", 1)), 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs?from_savepoint=" + url.QueryEscape("ftp://x/y"), string(jobSpec("x", 1)), 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs?from_savepoint=" + url.QueryEscape("file://"+t.TempDir()), string(jobSpec("x", 1)), 400, api.CodeBadRequest},
			{"DELETE", "/api/v1/jobs/" + id + "/checkpoints", "", 405, api.CodeMethodNotAllowed},
			{"PUT", "/api/v1/jobs/" + id + "/savepoints", "", 405, api.CodeMethodNotAllowed},
			{"POST", "/api/v1/jobs/" + id + "/restarts", "", 405, api.CodeMethodNotAllowed},
			{"POST", "/api/v1/jobs/" + id + "/checkpoints/1", "", 405, api.CodeMethodNotAllowed},
		} {
			resp, data := do(t, tc.method, base+tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, data)
				continue
			}
			wantError(t, resp, data, tc.status, tc.code)
		}
	})
	t.Run("invalid checkpoint storage", func(t *testing.T) {
		resp, data := do(t, "POST", base+"/api/v1/jobs", string(jobSpecWith("bad", "checkpoint: {storage: \"file://host/x\"}\n", 1)))
		wantError(t, resp, data, http.StatusBadRequest, api.CodeBadRequest)
	})
}

func TestBadDefaultStorageRefusedAtNew(t *testing.T) {
	_, err := coordinator.New(coordinator.Config{CheckpointStorage: "ftp://host/x"})
	if err == nil || !strings.Contains(err.Error(), "checkpoint storage") {
		t.Fatalf("err = %v", err)
	}
	st, err := coordinator.OpenStorage("file://./rel/dir")
	if err != nil || !strings.HasSuffix(st.URI(""), "/rel/dir") {
		t.Fatalf("relative file:// URI: %v", err)
	}
}
