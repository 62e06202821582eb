package coordinator_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
)

// TestRESTContractEveryPath walks every route the coordinator serves: each
// is documented in docs/rest.md, answers its documented happy request, and
// answers bad input (unknown job, wrong method, malformed ids and bodies)
// with a JSON error of the right status, never a 500.
func TestRESTContractEveryPath(t *testing.T) {
	c := startCoordinator(t, clock.NewManual(t0))
	base := "http://" + c.HTTPAddr()
	resp, data := do(t, "POST", base+"/api/v1/jobs", string(jobSpecWith("contract", "checkpoint: {interval: 1s}\n", 2, 1)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %d %s", resp.StatusCode, data)
	}
	var sub api.Submitted
	if err := json.Unmarshal(data, &sub); err != nil {
		t.Fatal(err)
	}
	id := sub.ID

	docs, err := os.ReadFile("../docs/rest.md")
	if err != nil {
		t.Fatal(err)
	}
	// happy is one good request per route, with its status and content type.
	type want struct {
		method, path, body string
		status             int
		ctype              string
		contains           string
	}
	happy := map[string]want{
		"GET /":                                   {"GET", "/", "", 200, "text/html; charset=utf-8", `<script type="module" src="/ui/app.js">`},
		"GET /ui/{file}":                          {"GET", "/ui/app.js", "", 200, "text/javascript; charset=utf-8", "hashchange"},
		"GET /healthz":                            {"GET", "/healthz", "", 200, "application/json", `"ok"`},
		"GET /metrics":                            {"GET", "/metrics", "", 200, "text/plain", "weir_workers"},
		"GET /api/v1/overview":                    {"GET", "/api/v1/overview", "", 200, "application/json", `"slots_free"`},
		"GET /api/v1/workers":                     {"GET", "/api/v1/workers", "", 200, "application/json", `"workers"`},
		"POST /api/v1/workers/{id}/drain":         {"POST", "/api/v1/workers/" + id + "/drain", "", 404, "application/json", `"not_found"`}, // no worker by that id,
		"GET /api/v1/jobs":                        {"GET", "/api/v1/jobs", "", 200, "application/json", id},
		"POST /api/v1/jobs":                       {"POST", "/api/v1/jobs", string(jobSpec("another", 1)), 201, "application/json", `"id"`},
		"GET /api/v1/jobs/{id}":                   {"GET", "/api/v1/jobs/" + id, "", 200, "application/json", `"SCHEDULING"`},
		"GET /api/v1/jobs/{id}/spec":              {"GET", "/api/v1/jobs/" + id + "/spec", "", 200, "application/yaml", "name: contract"},
		"GET /api/v1/jobs/{id}/graph":             {"GET", "/api/v1/jobs/" + id + "/graph", "", 200, "application/json", `"partitioning": "rebalance"`},
		"GET /api/v1/jobs/{id}/subtasks":          {"GET", "/api/v1/jobs/" + id + "/subtasks", "", 200, "application/json", `"PENDING"`},
		"GET /api/v1/jobs/{id}/kafka":             {"GET", "/api/v1/jobs/" + id + "/kafka", "", 200, "application/json", `"basis": "none"`},
		"GET /api/v1/jobs/{id}/checkpoints":       {"GET", "/api/v1/jobs/" + id + "/checkpoints", "", 200, "application/json", `"interval_ms": 1000`},
		"GET /api/v1/jobs/{id}/checkpoints/{cid}": {"GET", "/api/v1/jobs/" + id + "/checkpoints/1", "", 404, "application/json", `"not_found"`},
		"GET /api/v1/jobs/{id}/restarts":          {"GET", "/api/v1/jobs/" + id + "/restarts", "", 200, "application/json", `"restarts": []`},
		"GET /api/v1/jobs/{id}/savepoints":        {"GET", "/api/v1/jobs/" + id + "/savepoints", "", 200, "application/json", `"savepoints": []`},
		"POST /api/v1/jobs/{id}/savepoints":       {"POST", "/api/v1/jobs/" + id + "/savepoints", "", 409, "application/json", `"conflict"`},
		"GET /api/v1/jobs/{id}/savepoints/{sid}":  {"GET", "/api/v1/jobs/" + id + "/savepoints/sp-00000000", "", 404, "application/json", `"not_found"`},
		"POST /api/v1/jobs/{id}/cancel":           {"POST", "/api/v1/jobs/" + id + "/cancel", "", 202, "application/json", `"CANCELLED"`},
	}
	routes := coordinator.Routes(c)
	for _, r := range routes {
		t.Run(r, func(t *testing.T) {
			method, path, _ := strings.Cut(r, " ")
			if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(r) + `$`).Match(docs) {
				t.Errorf("docs/rest.md has no section %q", "## "+r)
			}
			w, ok := happy[r]
			if !ok {
				t.Fatalf("no contract case for %s: add one", r)
			}
			resp, data := do(t, w.method, base+w.path, w.body)
			if resp.StatusCode != w.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), w.ctype) || !strings.Contains(string(data), w.contains) {
				t.Fatalf("%s %s: %d %q, want %d %q containing %q:\n%s", w.method, w.path, resp.StatusCode, resp.Header.Get("Content-Type"), w.status, w.ctype, w.contains, data)
			}
			// HEAD answers like GET, without a body.
			if method == http.MethodGet {
				resp, data := do(t, "HEAD", base+w.path, "")
				if resp.StatusCode != w.status || len(data) != 0 {
					t.Fatalf("HEAD %s: %d, %d bytes", w.path, resp.StatusCode, len(data))
				}
			}
			// Wrong method: 405 with Allow.
			resp, data = do(t, "DELETE", base+w.path, "")
			e := wantError(t, resp, data, 405, api.CodeMethodNotAllowed)
			if !strings.Contains(resp.Header.Get("Allow"), method) || !strings.Contains(e.Message, "DELETE") {
				t.Fatalf("Allow %q, message %q", resp.Header.Get("Allow"), e.Message)
			}
			// Unknown job: 404.
			if strings.Contains(path, "{id}") {
				p := strings.Replace(w.path, id, "0badc0de", 1)
				resp, data := do(t, method, base+p, w.body)
				e := wantError(t, resp, data, 404, api.CodeNotFound)
				if !strings.Contains(e.Message, "0badc0de") {
					t.Fatalf("message %q does not name the job", e.Message)
				}
			}
		})
	}
	if len(happy) != len(routes) {
		t.Errorf("%d contract cases for %d routes: a case names a route that does not exist", len(happy), len(routes))
	}

	t.Run("bad input", func(t *testing.T) {
		other := strings.TrimSpace(regexp.MustCompile(`"id": "([0-9a-f]{8})"`).FindStringSubmatch(func() string {
			_, d := do(t, "POST", base+"/api/v1/jobs", string(jobSpec("third", 1)))
			return string(d)
		}())[1])
		for _, x := range []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"POST", "/api/v1/jobs", "name: [unclosed", 400, api.CodeInvalidSpec},
			{"POST", "/api/v1/jobs", "pipeline: []\n", 400, api.CodeInvalidSpec},
			{"POST", "/api/v1/jobs", "", 400, api.CodeInvalidSpec},
			{"POST", "/api/v1/jobs?from_savepoint=", string(jobSpec("x", 1)), 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs?from_savepoint=file:///nonexistent/sp-1", string(jobSpec("x", 1)), 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs", "name: x\n" + strings.Repeat("#", 2<<20), 413, api.CodeTooLarge},
			{"GET", "/api/v1/jobs/" + other + "/checkpoints/abc", "", 400, api.CodeBadRequest},
			{"GET", "/api/v1/jobs/" + other + "/checkpoints/0", "", 400, api.CodeBadRequest},
			{"GET", "/api/v1/jobs/" + other + "/checkpoints/-3", "", 400, api.CodeBadRequest},
			{"GET", "/api/v1/jobs/" + other + "/checkpoints/99", "", 404, api.CodeNotFound},
			{"POST", "/api/v1/jobs/" + other + "/savepoints", "{not json", 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs/" + other + "/savepoints", `{"stop": "yes"}`, 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs/" + other + "/savepoints", `{"drain": true}`, 400, api.CodeBadRequest},
			{"POST", "/api/v1/jobs/" + other + "/savepoints", `{"stop": false}`, 409, api.CodeConflict},
			{"POST", "/api/v1/jobs/" + id + "/cancel", "", 409, api.CodeConflict}, // cancelled above
			{"GET", "/api/v1/nothing", "", 404, api.CodeNotFound},
			{"GET", "/api/v2/jobs", "", 404, api.CodeNotFound},
			{"GET", "/ui/", "", 404, api.CodeNotFound},
			{"GET", "/ui/nothing.js", "", 404, api.CodeNotFound},
			{"GET", "/ui/../rest.go", "", 404, api.CodeNotFound},
			{"GET", "/index.html", "", 404, api.CodeNotFound},
			{"POST", "/", "", 405, api.CodeMethodNotAllowed},
		} {
			resp, data := do(t, x.method, base+x.path, x.body)
			wantError(t, resp, data, x.status, x.code)
		}
	})
}

// TestKafkaLagUnreachableBroker: a Kafka source whose brokers do not answer
// is reported in the answer (200 with the source's error), not as a
// failure of the request.
func TestKafkaLagUnreachableBroker(t *testing.T) {
	c := startCoordinator(t, clock.Real{})
	cl := api.NewClient("http://" + c.HTTPAddr())
	id, err := cl.Submit(t.Context(), []byte("name: lag\npipeline:\n  - name: src\n    parallelism: 2\n    source: {kafka: {brokers: [\"127.0.0.1:1\"], topic: in}}\n  - name: out\n    parallelism: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := cl.KafkaLag(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if l.Basis != "none" || len(l.Sources) != 1 || l.TotalLag != 0 {
		t.Fatalf("%+v", l)
	}
	s := l.Sources[0]
	if s.Node != "src" || s.Topic != "in" || s.Isolation != "read_committed" || s.Parallelism != 2 || !strings.Contains(s.Error, "127.0.0.1:1") || len(s.Partitions) != 0 {
		t.Fatalf("%+v", s)
	}
	g, err := cl.Graph(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Vertices) != 2 || g.Vertices[0].Nodes[0].Kind != "source" || g.Vertices[0].Nodes[0].Connector != "kafka" ||
		g.Vertices[0].States["PENDING"] != 2 || len(g.Edges) != 1 || g.Edges[0].From != "src" || g.Edges[0].To != "out" {
		t.Fatalf("%+v", g)
	}
	sps, err := cl.Savepoints(t.Context(), id)
	if err != nil || len(sps) != 0 {
		t.Fatalf("%v %v", sps, err)
	}
	st, err := cl.Subtasks(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Subtasks) != 3 || st.Subtasks[1].Vertex != "src" || st.Subtasks[1].Index != 1 || st.Subtasks[2].Parallelism != 1 {
		t.Fatalf("%+v", st)
	}
}
