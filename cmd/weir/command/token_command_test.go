package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/auth"
)

// startAuthCoordinator runs a coordinator in this process that reads its
// tokens from file.
func startAuthCoordinator(t *testing.T, file string) string {
	t.Helper()
	tokens, err := auth.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	co, err := coordinator.New(coordinator.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 5 * time.Second, ScheduleTimeout: -1,
		CheckpointStorage: "file://" + t.TempDir(), Tokens: tokens,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	return "http://" + co.HTTPAddr()
}

func tokenOf(t *testing.T, r result) string {
	t.Helper()
	first, _, _ := strings.Cut(r.stdout, "\n")
	tok, ok := strings.CutPrefix(first, "token: ")
	if !ok || !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("no token in %s", r)
	}
	return tok
}

// TestTokenCreateAndClientToken: `weir token create` makes tokens a
// coordinator's --tokens-file accepts; client verbs send them from --token
// or WEIR_TOKEN, and say what the coordinator refused without one or with
// too weak a role.
func TestTokenCreateAndClientToken(t *testing.T) {
	t.Setenv("WEIR_TOKEN", "")
	file := filepath.Join(t.TempDir(), "tokens")
	op := tokenOf(t, mustRun(t, 0, "token", "create", "ci-bot", "--role", "operator", "--tokens-file", file))
	viewer := tokenOf(t, mustRun(t, 0, "token", "create", "alice", "--tokens-file", file))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}
	if strings.Contains(string(data), op) || !strings.Contains(string(data), auth.Line("ci-bot", auth.Operator, op)) ||
		!strings.Contains(string(data), auth.Line("alice", auth.Viewer, viewer)) {
		t.Fatalf("tokens file:\n%s", data)
	}
	// A hand-edited file without a last newline gets one before the new line.
	if err := os.WriteFile(file, append(data, []byte("# no newline")...), 0o600); err != nil {
		t.Fatal(err)
	}
	late := tokenOf(t, mustRun(t, 0, "token", "create", "late", "--tokens-file", file))
	if data, _ := os.ReadFile(file); !strings.Contains(string(data), "# no newline\n"+auth.Line("late", auth.Viewer, late)+"\n") {
		t.Fatalf("tokens file:\n%s", data)
	}
	// Without --tokens-file the line is printed.
	r := mustRun(t, 0, "token", "create", "root", "--role", "admin")
	if admin := tokenOf(t, r); !strings.Contains(r.stdout, "tokens-file line: "+auth.Line("root", auth.Admin, admin)) {
		t.Fatalf("%s", r)
	}
	mustRun(t, 2, "token", "create", "x", "--role", "boss")
	mustRun(t, 2, "token", "create", "a b")
	mustRun(t, 2, "token", "create")

	url := startAuthCoordinator(t, file)
	r = mustRun(t, 1, "jobs", "--coordinator", url)
	if !strings.Contains(r.stderr, "needs a token") {
		t.Errorf("no token: %s", r)
	}
	mustRun(t, 1, "jobs", "--coordinator", url, "--token", "weir_wrong")
	mustRun(t, 0, "jobs", "--coordinator", url, "--token", viewer)
	id := strings.TrimSpace(mustRun(t, 0, "submit", "--coordinator", url, "--token", op,
		writeFile(t, "job.yaml", "name: j\npipeline:\n  - source: {datagen: {count: 1}}\n  - sink: {discard: {}}\n")).stdout)
	r = mustRun(t, 1, "cancel", id, "--coordinator", url, "--token", viewer)
	if !strings.Contains(r.stderr, `token "alice" has role viewer`) {
		t.Errorf("viewer cancel: %s", r)
	}
	t.Setenv("WEIR_TOKEN", op)
	mustRun(t, 0, "cancel", id, "--coordinator", url)
	// --token wins over WEIR_TOKEN.
	mustRun(t, 1, "submit", "--coordinator", url, "--token", viewer, writeFile(t, "job2.yaml", "name: j\n"))
}

// TestCoordinatorSecureByDefault: `weir coordinator` refuses to start
// unless told how to secure its REST API.
func TestCoordinatorSecureByDefault(t *testing.T) {
	addr := []string{"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--checkpoint-storage", "file://" + t.TempDir()}
	r := mustRun(t, 2, append([]string{"coordinator"}, addr...)...)
	if !strings.Contains(r.stderr, "--tokens-file") || !strings.Contains(r.stderr, "--insecure") {
		t.Errorf("%s", r)
	}
	file := filepath.Join(t.TempDir(), "tokens")
	mustRun(t, 0, "token", "create", "a", "--tokens-file", file)
	r = mustRun(t, 2, append([]string{"coordinator", "--insecure", "--tokens-file", file}, addr...)...)
	if !strings.Contains(r.stderr, "exclude each other") {
		t.Errorf("%s", r)
	}
	r = mustRun(t, 2, append([]string{"coordinator", "--tokens-file", file + ".missing"}, addr...)...)
	if !strings.Contains(r.stderr, "tokens.missing") {
		t.Errorf("%s", r)
	}
	if err := os.WriteFile(file, []byte("a viewer weir_pasted-token-instead-of-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, 2, append([]string{"coordinator", "--tokens-file", file}, addr...)...)
	if !strings.Contains(r.stderr, "line 1") || strings.Contains(r.stderr, "pasted-token") {
		t.Errorf("%s", r)
	}
}
