package coordinator_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/auth"
	"github.com/weir-stream/weir/coordinator/clock"
)

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// authCluster is a coordinator that wants tokens: one per role.
type authCluster struct {
	c                       *coordinator.Coordinator
	base                    string
	file                    string
	viewer, operator, admin string
	log                     *logBuffer
}

func startAuthCoordinator(t *testing.T) *authCluster {
	t.Helper()
	a := &authCluster{file: filepath.Join(t.TempDir(), "tokens"), log: &logBuffer{}}
	var lines []string
	for _, x := range []struct {
		tok  *string
		name string
		role auth.Role
	}{{&a.viewer, "alice", auth.Viewer}, {&a.operator, "bob", auth.Operator}, {&a.admin, "root", auth.Admin}} {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		*x.tok = tok
		lines = append(lines, auth.Line(x.name, x.role, tok))
	}
	if err := os.WriteFile(a.file, []byte("# test tokens\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(a.log, nil))
	tokens, err := auth.Open(a.file, logger)
	if err != nil {
		t.Fatal(err)
	}
	a.c = startCoordinator(t, clock.NewManual(t0), func(cfg *coordinator.Config) {
		cfg.Tokens = tokens
		cfg.Logger = logger
	})
	a.base = "http://" + a.c.HTTPAddr()
	return a
}

// doAs sends a request with a bearer token ("" for none).
func doAs(t *testing.T, token, method, url, body string) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{}
	if method == http.MethodPost {
		h.Set("Content-Type", "application/yaml")
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return doHeader(t, method, url, body, h)
}

// TestRESTAuthEveryMutatingPath walks every route the coordinator serves
// that changes something (every method but GET, from the route table, so
// a new one is covered without editing this test): without a token, or
// with an unknown one, it answers 401 with a WWW-Authenticate header; a
// viewer gets 403; an operator gets past both; and each of those calls
// leaves an audit line with who, what and the status. Reads need a viewer
// token, except the health check and the UI's files.
func TestRESTAuthEveryMutatingPath(t *testing.T) {
	a := startAuthCoordinator(t)
	resp, data := doAs(t, a.operator, "POST", a.base+"/api/v1/jobs", string(jobSpec("authed", 1)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit as operator: %d %s", resp.StatusCode, data)
	}
	var sub api.Submitted
	if err := json.Unmarshal(data, &sub); err != nil {
		t.Fatal(err)
	}
	fill := func(p string) string {
		p = strings.ReplaceAll(p, "{id}", sub.ID)
		p = strings.ReplaceAll(p, "{cid}", "1")
		p = strings.ReplaceAll(p, "{sid}", "sp-00000000")
		return strings.ReplaceAll(p, "{file}", "app.js")
	}
	open := map[string]bool{"GET /": true, "GET /ui/{file}": true, "GET /healthz": true}
	mutating := 0
	for _, r := range coordinator.Routes(a.c) {
		method, p, _ := strings.Cut(r, " ")
		url := a.base + fill(p)
		body := ""
		if p == "/api/v1/jobs" {
			body = string(jobSpec("again", 1))
		}
		t.Run(r, func(t *testing.T) {
			if method == http.MethodGet {
				resp, data := doAs(t, "", method, url, "")
				if open[r] {
					if resp.StatusCode == http.StatusUnauthorized {
						t.Fatalf("%s is open but answered 401: %s", r, data)
					}
					return
				}
				wantError(t, resp, data, 401, api.CodeUnauthorized)
				resp, data = doAs(t, a.viewer, method, url, "")
				if resp.StatusCode == 401 || resp.StatusCode == 403 {
					t.Fatalf("a viewer on %s: %d %s", r, resp.StatusCode, data)
				}
				return
			}
			mutating++
			for _, tok := range []string{"", "weir_not-a-token", "Basic xyz"} {
				h := http.Header{"Content-Type": {"application/yaml"}}
				if tok != "" {
					h.Set("Authorization", "Bearer "+tok)
				}
				resp, data := doHeader(t, method, url, body, h)
				wantError(t, resp, data, 401, api.CodeUnauthorized)
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatalf("401 without WWW-Authenticate")
				}
			}
			resp, data := doAs(t, a.viewer, method, url, body)
			e := wantError(t, resp, data, 403, api.CodeForbidden)
			if !strings.Contains(e.Message, `"alice"`) || !strings.Contains(e.Message, "operator") {
				t.Fatalf("403 message %q names neither the token nor the role needed", e.Message)
			}
			resp, data = doAs(t, a.operator, method, url, body)
			if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode >= 500 {
				t.Fatalf("an operator on %s: %d %s", r, resp.StatusCode, data)
			}
			logs := a.log.String()
			for _, want := range []string{
				"who=- role=- method=" + method + " path=" + fill(p),
				"who=alice role=viewer method=" + method + " path=" + fill(p),
				"who=bob role=operator method=" + method + " path=" + fill(p),
			} {
				if !strings.Contains(logs, "msg=audit component=audit "+want) {
					t.Errorf("no audit line with %q in:\n%s", want, logs)
				}
			}
			if !strings.Contains(logs, "status=401") || !strings.Contains(logs, "status=403") {
				t.Errorf("audit lines lack the refusals' status:\n%s", logs)
			}
			if strings.Contains(logs, a.operator) || strings.Contains(logs, a.viewer) {
				t.Fatal("a token reached the log")
			}
		})
	}
	if mutating < 3 {
		t.Fatalf("walked %d mutating routes, want at least submit, cancel and savepoint", mutating)
	}
	// The submit's audit line names the job it created.
	if !strings.Contains(a.log.String(), "who=bob role=operator method=POST path=/api/v1/jobs job="+sub.ID+" status=201") {
		t.Errorf("the submit's audit line lacks its job:\n%s", a.log.String())
	}
	// An admin may do what an operator may.
	resp, data = doAs(t, a.admin, "POST", a.base+"/api/v1/jobs", string(jobSpec("by-admin", 1)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit as admin: %d %s", resp.StatusCode, data)
	}
}

// TestTokensFileReloaded: a token added to the file works from the next
// request, a removed one stops working, and a broken edit keeps the tokens
// read before (logged once) instead of locking everyone out.
func TestTokensFileReloaded(t *testing.T) {
	a := startAuthCoordinator(t)
	url := a.base + "/api/v1/overview"
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := doAs(t, tok, "GET", url, ""); resp.StatusCode != 401 {
		t.Fatalf("unknown token: %d", resp.StatusCode)
	}
	old, err := os.ReadFile(a.file)
	if err != nil {
		t.Fatal(err)
	}
	added := string(old) + auth.Line("carol", auth.Viewer, tok) + "\n"
	if err := os.WriteFile(a.file, []byte(added), 0o600); err != nil {
		t.Fatal(err)
	}
	if resp, data := doAs(t, tok, "GET", url, ""); resp.StatusCode != 200 {
		t.Fatalf("added token: %d %s", resp.StatusCode, data)
	}
	// Revoke alice by rewriting without her line.
	var kept []string
	for _, l := range strings.Split(added, "\n") {
		if !strings.HasPrefix(l, "alice ") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(a.file, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if resp, _ := doAs(t, a.viewer, "GET", url, ""); resp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
	// A broken edit: the previous tokens stay.
	if err := os.WriteFile(a.file, []byte(strings.Join(kept, "\n")+"\nbroken line here too\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if resp, _ := doAs(t, tok, "GET", url, ""); resp.StatusCode != 200 {
			t.Fatalf("after a broken edit: %d", resp.StatusCode)
		}
	}
	if n := strings.Count(a.log.String(), "tokens file changed but cannot be used"); n != 1 {
		t.Fatalf("the broken edit was logged %d times, want once:\n%s", n, a.log.String())
	}
}
