package coordinator_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
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
