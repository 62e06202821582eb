package coordinator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/internal/buildinfo"
)

// do sends a request as the CLI does: a POST carries Content-Type
// application/yaml.
func do(t *testing.T, method, url, body string) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{}
	if method == http.MethodPost {
		h.Set("Content-Type", "application/yaml")
	}
	return doHeader(t, method, url, body, h)
}

// doHeader sends a request with exactly the given headers.
func doHeader(t *testing.T, method, url, body string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func wantError(t *testing.T, resp *http.Response, data []byte, status int, code string) *api.Error {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var eb api.ErrorBody
	if err := json.Unmarshal(data, &eb); err != nil || eb.Error == nil {
		t.Fatalf("not an error body: %s", data)
	}
	if eb.Error.Code != code || eb.Error.Message == "" {
		t.Fatalf("code %q message %q, want code %q", eb.Error.Code, eb.Error.Message, code)
	}
	return eb.Error
}

func TestConfigValidate(t *testing.T) {
	if _, err := coordinator.New(coordinator.Config{}); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	_, err := coordinator.New(coordinator.Config{ParseSpec: fakeParse, BuildGraph: fakeBuild,
		HeartbeatInterval: time.Second, HeartbeatTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "heartbeat timeout") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartStop(t *testing.T) {
	c := startCoordinator(t, clock.Real{})
	if c.GRPCAddr() == "" || c.HTTPAddr() == "" {
		t.Fatal("no bound addresses")
	}
	if err := c.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	c.Stop()
	c.Stop()
}

func TestREST(t *testing.T) {
	clk := clock.NewManual(t0)
	c := startCoordinator(t, clk)
	base := "http://" + c.HTTPAddr()
	cl := api.NewClient(base)
	ctx := context.Background()

	t.Run("healthz", func(t *testing.T) {
		resp, data := do(t, "GET", base+"/healthz", "")
		if resp.StatusCode != 200 || !strings.Contains(string(data), "ok") {
			t.Fatalf("%d %s", resp.StatusCode, data)
		}
	})
	t.Run("overview empty", func(t *testing.T) {
		ov, err := cl.Overview(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ov.Workers != 0 || ov.SlotsTotal != 0 || len(ov.Jobs) != 10 {
			t.Fatalf("%+v", ov)
		}
		if ov.Coordinator.Version == "" || ov.Coordinator.Version != buildinfo.Version() || ov.Coordinator.GoVersion != runtime.Version() {
			t.Fatalf("overview coordinator %+v, want version %q and Go %s", ov.Coordinator, buildinfo.Version(), runtime.Version())
		}
	})
	t.Run("workers empty", func(t *testing.T) {
		resp, data := do(t, "GET", base+"/api/v1/workers", "")
		if resp.StatusCode != 200 || !strings.Contains(string(data), `"workers": []`) {
			t.Fatalf("%d %s", resp.StatusCode, data)
		}
	})
	t.Run("jobs empty", func(t *testing.T) {
		jobs, err := cl.Jobs(ctx)
		if err != nil || len(jobs) != 0 {
			t.Fatalf("%v %v", jobs, err)
		}
	})

	var id string
	t.Run("submit waits for slots", func(t *testing.T) {
		var err error
		id, err = cl.Submit(ctx, jobSpec("demo", 2, 1))
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 8 {
			t.Fatalf("id %q", id)
		}
		j, err := cl.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != "SCHEDULING" || j.Name != "demo" || !strings.Contains(j.Message, "needs 2 slots, 0 free") {
			t.Fatalf("%+v", j)
		}
		if len(j.Vertices) != 2 || j.Vertices[0].Parallelism != 2 || len(j.Vertices[0].Subtasks) != 2 || j.Vertices[0].Subtasks[0].State != "PENDING" {
			t.Fatalf("vertices %+v", j.Vertices)
		}
	})
	t.Run("submit response", func(t *testing.T) {
		resp, data := do(t, "POST", base+"/api/v1/jobs", string(jobSpec("second", 1)))
		if resp.StatusCode != http.StatusCreated || !strings.Contains(string(data), `"id"`) || resp.Header.Get("Location") == "" {
			t.Fatalf("%d %s", resp.StatusCode, data)
		}
	})
	t.Run("list", func(t *testing.T) {
		jobs, err := cl.Jobs(ctx)
		if err != nil || len(jobs) != 2 || jobs[1].ID != id || jobs[0].Name != "second" {
			t.Fatalf("%+v %v", jobs, err)
		}
	})
	t.Run("spec", func(t *testing.T) {
		s, err := cl.Spec(ctx, id)
		if err != nil || string(s) != string(jobSpec("demo", 2, 1)) {
			t.Fatalf("%q %v", s, err)
		}
		resp, _ := do(t, "GET", base+"/api/v1/jobs/"+id+"/spec", "")
		if resp.Header.Get("Content-Type") != "application/yaml" {
			t.Fatal(resp.Header.Get("Content-Type"))
		}
	})
	t.Run("malformed spec", func(t *testing.T) {
		resp, data := do(t, "POST", base+"/api/v1/jobs", "pipeline:\n  - parallelism: 1\n  - parallelism: 2\n")
		e := wantError(t, resp, data, 400, api.CodeInvalidSpec)
		paths := []string{}
		for _, d := range e.Details {
			paths = append(paths, d.Path)
		}
		if strings.Join(paths, ",") != "name,pipeline[0].name,pipeline[1].name" {
			t.Fatalf("details %+v", e.Details)
		}
		_, err := cl.Submit(ctx, []byte("name: [unclosed"))
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 400 || len(ae.Details) != 1 {
			t.Fatalf("%#v", err)
		}
		if !strings.Contains(err.Error(), "\n  ") {
			t.Fatalf("client error does not list details: %q", err.Error())
		}
	})
	t.Run("empty body", func(t *testing.T) {
		resp, data := do(t, "POST", base+"/api/v1/jobs", "")
		wantError(t, resp, data, 400, api.CodeInvalidSpec)
	})
	t.Run("graph error", func(t *testing.T) {
		resp, data := do(t, "POST", base+"/api/v1/jobs", string(jobSpec("neg", -1)))
		wantError(t, resp, data, 400, api.CodeInvalidSpec)
	})
	t.Run("unknown job", func(t *testing.T) {
		for _, p := range []struct{ method, path string }{
			{"GET", "/api/v1/jobs/nope"}, {"POST", "/api/v1/jobs/nope/cancel"}, {"GET", "/api/v1/jobs/nope/spec"},
		} {
			resp, data := do(t, p.method, base+p.path, "")
			wantError(t, resp, data, 404, api.CodeNotFound)
		}
		_, err := cl.Job(ctx, "nope")
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != api.CodeNotFound {
			t.Fatalf("%v", err)
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		resp, data := do(t, "GET", base+"/api/v1/nothing", "")
		wantError(t, resp, data, 404, api.CodeNotFound)
	})
	t.Run("wrong method", func(t *testing.T) {
		for _, p := range []struct{ method, path, allow string }{
			{"DELETE", "/api/v1/jobs", "GET, HEAD, POST"},
			{"POST", "/api/v1/overview", "GET, HEAD"},
			{"PUT", "/api/v1/workers", "GET, HEAD"},
			{"DELETE", "/api/v1/jobs/" + id, "GET, HEAD"},
			{"GET", "/api/v1/jobs/" + id + "/cancel", "POST"},
			{"POST", "/api/v1/jobs/" + id + "/spec", "GET, HEAD"},
			{"POST", "/healthz", "GET, HEAD"},
			{"POST", "/metrics", "GET, HEAD"},
		} {
			resp, data := do(t, p.method, base+p.path, "")
			wantError(t, resp, data, 405, api.CodeMethodNotAllowed)
			if got := resp.Header.Get("Allow"); got != p.allow {
				t.Errorf("%s %s: Allow %q, want %q", p.method, p.path, got, p.allow)
			}
		}
	})
	t.Run("too large", func(t *testing.T) {
		resp, data := do(t, "POST", base+"/api/v1/jobs", "name: x\n"+strings.Repeat("#", 2<<20))
		wantError(t, resp, data, 413, api.CodeTooLarge)
	})
	t.Run("metrics", func(t *testing.T) {
		resp, data := do(t, "GET", base+"/metrics", "")
		for _, want := range []string{"weir_workers 0", "weir_slots_total 0", "weir_slots_used 0",
			`weir_jobs{state="SCHEDULING"} 2`, `weir_job_records_in_total{job="` + id + `",vertex="n0"} 0`} {
			if !strings.Contains(string(data), want) {
				t.Errorf("metrics lack %q", want)
			}
		}
		if resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
	})
	t.Run("cancel twice", func(t *testing.T) {
		resp, data := do(t, "POST", base+"/api/v1/jobs/"+id+"/cancel", "")
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(data), `"CANCELLED"`) {
			t.Fatalf("%d %s", resp.StatusCode, data)
		}
		resp, data = do(t, "POST", base+"/api/v1/jobs/"+id+"/cancel", "")
		wantError(t, resp, data, 409, api.CodeConflict)
		err := cl.Cancel(ctx, id)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 409 {
			t.Fatalf("%v", err)
		}
		j, _ := cl.Job(ctx, id)
		if j.State != "CANCELLED" || j.EndedAt == nil || j.FailureCause != "cancelled by user" {
			t.Fatalf("%+v", j)
		}
	})
	t.Run("scheduling timeout", func(t *testing.T) {
		jobs, _ := cl.Jobs(ctx)
		other := jobs[0].ID
		clk.Advance(61 * time.Second)
		eventually(t, 5*time.Second, func() bool {
			j, err := cl.Job(ctx, other)
			return err == nil && j.State == "FAILED"
		}, "job to fail on the scheduling timeout")
		j, _ := cl.Job(ctx, other)
		if !strings.Contains(j.FailureCause, "needs 1 slots, 0 free") {
			t.Fatalf("cause %q", j.FailureCause)
		}
		resp, data := do(t, "POST", base+"/api/v1/jobs/"+other+"/cancel", "")
		wantError(t, resp, data, 409, api.CodeConflict)
	})
}
