package worker_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// get returns the status code and JSON body of GET http://addr/path.
func get(t *testing.T, addr, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp.StatusCode, body
}

// /healthz says the process is alive whatever its session; /readyz is 200
// only while the worker is registered with a coordinator, which the Helm
// chart's readiness probe relies on (deploy/helm, docs/kubernetes.md).
func TestHealthzAndReadyz(t *testing.T) {
	addr := freeAddr(t)
	w := newWorker(t, addr, nil)
	ready := func() bool { code, _ := get(t, w.HTTPAddr(), "/readyz"); return code == http.StatusOK }

	if code, body := get(t, w.HTTPAddr(), "/healthz"); code != http.StatusOK || body["status"] != "ok" || body["connected"] != false {
		t.Fatalf("/healthz without a coordinator: %d %v, want 200 ok, not connected", code, body)
	}
	if code, body := get(t, w.HTTPAddr(), "/readyz"); code != http.StatusServiceUnavailable || body["connected"] != false {
		t.Fatalf("/readyz without a coordinator: %d %v, want 503", code, body)
	}

	c := startCoordinator(t, addr)
	eventually(t, 10*time.Second, ready, "/readyz to answer 200 once registered")
	if code, body := get(t, w.HTTPAddr(), "/healthz"); code != http.StatusOK || body["connected"] != true {
		t.Fatalf("/healthz when registered: %d %v", code, body)
	}

	c.Stop()
	eventually(t, 10*time.Second, func() bool { return !ready() }, "/readyz to answer 503 after the coordinator went away")
	if code, _ := get(t, w.HTTPAddr(), "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz after the coordinator went away: %d, want 200 (the process is alive)", code)
	}
}
