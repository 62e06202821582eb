package coordinator_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
)

// A submission must say it is YAML or JSON: text/plain, form and multipart
// bodies are what a browser sends cross-origin without a CORS preflight.
func TestSubmitContentType(t *testing.T) {
	c := startCoordinator(t, clock.NewManual(t0))
	url := "http://" + c.HTTPAddr() + "/api/v1/jobs"
	body := string(jobSpec("ct", 1))
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/octet-stream", "yaml", "application/yaml;;"} {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		resp, data := doHeader(t, "POST", url, body, h)
		e := wantError(t, resp, data, http.StatusUnsupportedMediaType, api.CodeUnsupportedMedia)
		if !strings.Contains(e.Message, "application/yaml") {
			t.Errorf("Content-Type %q: message %q does not say what to send", ct, e.Message)
		}
	}
	for _, ct := range []string{"application/yaml", "application/x-yaml", "text/yaml", "text/yaml; charset=utf-8", "Application/YAML"} {
		resp, data := doHeader(t, "POST", url, body, http.Header{"Content-Type": {ct}})
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("Content-Type %q: %d %s", ct, resp.StatusCode, data)
		}
	}
	resp, data := doHeader(t, "POST", url, `{"name": "js", "restart": {"strategy": "none"}, "pipeline": [{"name": "n0", "parallelism": 1, "source": {"datagen": {}}}]}`,
		http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("JSON spec: %d %s", resp.StatusCode, data)
	}
	jobs, err := api.NewClient("http://" + c.HTTPAddr()).Jobs(context.Background())
	if err != nil || len(jobs) != 6 {
		t.Fatalf("%d jobs (%v), want the 6 accepted ones", len(jobs), err)
	}
}

// A web page on another origin cannot change anything: submit, cancel and
// savepoint answer 403 to a foreign Origin or Sec-Fetch-Site: cross-site,
// while the coordinator's own origin, clients without Origin and reads pass.
func TestCrossOriginRefused(t *testing.T) {
	c := startCoordinator(t, clock.NewManual(t0))
	base := "http://" + c.HTTPAddr()
	cl := api.NewClient(base)
	ctx := context.Background()
	id, err := cl.Submit(ctx, jobSpec("mine", 1))
	if err != nil {
		t.Fatal(err)
	}
	foreign := []http.Header{
		{"Origin": {"http://evil.example"}, "Content-Type": {"text/plain"}},
		{"Origin": {"http://evil.example"}, "Content-Type": {"application/yaml"}},
		{"Origin": {"null"}, "Content-Type": {"application/yaml"}},
		{"Origin": {"http://127.0.0.1:1"}, "Content-Type": {"application/yaml"}},
		{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}, "Content-Type": {"application/yaml"}},
		{"Sec-Fetch-Site": {"same-site"}, "Content-Type": {"application/yaml"}},
	}
	for _, h := range foreign {
		for _, p := range []string{"/api/v1/jobs", "/api/v1/jobs/" + id + "/cancel", "/api/v1/jobs/" + id + "/savepoints"} {
			resp, data := doHeader(t, "POST", base+p, string(jobSpec("evil", 1)), h.Clone())
			e := wantError(t, resp, data, http.StatusForbidden, api.CodeForbidden)
			if !strings.Contains(e.Message, "cross-origin") {
				t.Errorf("%v: message %q", h, e.Message)
			}
		}
		resp, data := doHeader(t, "DELETE", base+"/api/v1/jobs/"+id, "", h.Clone())
		wantError(t, resp, data, http.StatusForbidden, api.CodeForbidden)
		resp, data = doHeader(t, "GET", base+"/api/v1/jobs/"+id, "", h.Clone())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET with %v: %d %s", h, resp.StatusCode, data)
		}
	}
	jobs, err := cl.Jobs(ctx)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %+v (%v): a cross-origin submission got through", jobs, err)
	}
	if j, _ := cl.Job(ctx, id); j.State == "CANCELLED" || j.State == "CANCELLING" {
		t.Fatalf("a cross-origin cancel got through: %s", j.State)
	}
	// The web UI posts from the coordinator's own origin.
	for _, h := range []http.Header{
		{"Origin": {base}, "Content-Type": {"application/yaml"}},
		{"Origin": {base}, "Sec-Fetch-Site": {"same-origin"}, "Content-Type": {"application/yaml"}},
	} {
		resp, data := doHeader(t, "POST", base+"/api/v1/jobs", string(jobSpec("own", 1)), h)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("same-origin submit %v: %d %s", h, resp.StatusCode, data)
		}
	}
	resp, data := doHeader(t, "POST", base+"/api/v1/jobs/"+id+"/cancel", "", http.Header{"Origin": {base}})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("same-origin cancel: %d %s", resp.StatusCode, data)
	}
}

// A client that sends its headers and then trickles the body is cut off
// after the read timeout instead of holding the connection forever.
func TestSlowBodyCutOff(t *testing.T) {
	c := startCoordinator(t, clock.Real{}, func(cfg *coordinator.Config) { cfg.HTTPReadTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", c.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /api/v1/jobs HTTP/1.1\r\nHost: " + c.HTTPAddr() +
		"\r\nContent-Type: application/yaml\r\nContent-Length: 100000\r\n\r\nname: slow\n")); err != nil {
		t.Fatal(err)
	}
	// Backstop only: the server must close well before it.
	_ = conn.SetReadDeadline(time.Now().Add(45 * time.Second))
	r := bufio.NewReader(conn)
	for {
		_, err := r.ReadByte()
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the server still holds a connection whose body never arrives")
		}
		break // EOF or reset: cut off
	}
}

// pathsCoordinator runs a coordinator with the real spec parser whose
// allowed paths are one fresh directory, which it returns.
func pathsCoordinator(t *testing.T) (base, root, storage string) {
	t.Helper()
	root = t.TempDir()
	roots, err := spec.ParseRoots([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	storage = t.TempDir()
	c := startCoordinator(t, clock.NewManual(t0), func(cfg *coordinator.Config) {
		cfg.ParseSpec, cfg.BuildGraph = spec.Parse, graph.Build
		cfg.AllowedPaths = roots
		cfg.CheckpointStorage = "file://" + storage
	})
	return "http://" + c.HTTPAddr(), root, storage
}

func fileSinkJob(name, sinkPath, extra string) string {
	return "name: " + name + "\n" + extra + `pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 10}}
  - name: out
    sink: {file: {path: "` + sinkPath + `", format: raw}}
`
}

// One anonymous POST used to make every worker append to any file; now a
// file sink or checkpoint storage outside the allowed paths is refused at
// submit, with the field that names it.
func TestSubmitRefusesPathsOutsideRoots(t *testing.T) {
	base, root, storage := pathsCoordinator(t)
	for _, tc := range []struct{ spec, field string }{
		{fileSinkJob("keys", "/root/.ssh/authorized_keys", ""), "pipeline[1].sink.file.path"},
		{fileSinkJob("dotdot", root+"/../../etc/cron.d/x", ""), "pipeline[1].sink.file.path"},
		{fileSinkJob("store", root+"/out", "checkpoint: {storage: \"file:///var/lib/elsewhere\"}\n"), "checkpoint.storage"},
		{fileSinkJob("hdfs", root+"/out", "checkpoint: {storage: \"hdfs://evil.example:8020/x\"}\n"), "checkpoint.storage"},
	} {
		resp, data := do(t, "POST", base+"/api/v1/jobs", tc.spec)
		e := wantError(t, resp, data, http.StatusBadRequest, api.CodeInvalidSpec)
		if len(e.Details) != 1 || e.Details[0].Path != tc.field || !strings.Contains(e.Details[0].Message, "outside the allowed paths") {
			t.Errorf("details %+v, want one for %s", e.Details, tc.field)
		}
	}
	for _, tc := range []struct{ name, extra string }{
		{"inside", ""},
		{"own-storage", "checkpoint: {storage: \"file://" + storage + "/other\"}\n"},
		{"root-storage", "checkpoint: {storage: \"file://" + root + "/chk\"}\n"},
	} {
		resp, data := do(t, "POST", base+"/api/v1/jobs", fileSinkJob(tc.name, root+"/out.txt", tc.extra))
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, data)
		}
	}
}

// from_savepoint reads only under the storage roots, says the same whether
// or not an outside path exists, and never shows the working directory.
func TestFromSavepointOutsideRoots(t *testing.T) {
	base, root, _ := pathsCoordinator(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	body := fileSinkJob("restore", root+"/out", "")
	message := func(from string) string {
		t.Helper()
		resp, data := do(t, "POST", base+"/api/v1/jobs?from_savepoint="+url.QueryEscape(from), body)
		e := wantError(t, resp, data, http.StatusBadRequest, api.CodeBadRequest)
		if strings.Contains(e.Message, wd) {
			t.Errorf("from_savepoint %q: the message shows the working directory: %s", from, e.Message)
		}
		return e.Message
	}
	exists, missing := message("file:///etc"), message("file:///nonexistent-weir-dir")
	if strings.ReplaceAll(exists, "/etc", "/nonexistent-weir-dir") != missing || !strings.Contains(exists, "outside the allowed paths") {
		t.Errorf("an outside path's existence shows:\n%s\n%s", exists, missing)
	}
	for _, from := range []string{"/etc", "hdfs://evil.example:8020/sp", "relative/sp", "file://./sp", "file://../sp", root + "/../../etc"} {
		if m := message(from); !strings.Contains(m, "outside the allowed paths") && !strings.Contains(m, "want an absolute URI") {
			t.Errorf("from_savepoint %q: %s", from, m)
		}
	}
	// Inside a root it is read as before: the error says what is wrong.
	if m := message("file://" + root + "/sp-1"); strings.Contains(m, "outside") {
		t.Errorf("a savepoint inside the roots was refused: %s", m)
	}
}
