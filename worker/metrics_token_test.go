package worker_test

import (
	"net/http"
	"testing"

	"github.com/weir-stream/weir/worker"
)

// With MetricsTokens, a worker's /metrics answers only a request bearing
// one of them (401 otherwise, also for a token that is a prefix of a good
// one); /healthz stays open for probes. Before, /metrics was open to
// anyone who reached the port.
func TestMetricsWantsToken(t *testing.T) {
	w := newWorker(t, freeAddr(t), func(c *worker.Config) { c.MetricsTokens = []string{"m3trics", "other"} })
	get := func(path, token string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+w.HTTPAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "m3tric", http.StatusUnauthorized},
		{"/metrics", "wrong", http.StatusUnauthorized},
		{"/metrics", "m3trics", http.StatusOK},
		{"/metrics", "other", http.StatusOK},
		{"/healthz", "", http.StatusOK},
	} {
		if got := get(tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s with token %q: %d, want %d", tc.path, tc.token, got, tc.want)
		}
	}
	open := newWorker(t, freeAddr(t), func(c *worker.Config) { c.ID = "w2" })
	resp, err := http.Get("http://" + open.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("without tokens /metrics answered %d", resp.StatusCode)
	}
}
