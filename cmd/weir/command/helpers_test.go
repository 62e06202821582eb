package command

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/internal/leakcheck"
)

// result is one CLI run: its exit code and what it wrote.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "stderr:\n" + r.stderr
}

// run runs the CLI in-process, as `weir args...`.
func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustRun runs the CLI and fails the test unless it exits with want.
func mustRun(t *testing.T, want int, args ...string) result {
	t.Helper()
	r := run(t, args...)
	if r.code != want {
		t.Fatalf("weir %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// startCoordinator runs a coordinator in this process on free ports and
// returns its REST URL. Jobs wait in SCHEDULING for as long as there are no
// workers (no schedule timeout), so client verbs are testable without any.
func startCoordinator(t *testing.T) (*coordinator.Coordinator, string) {
	t.Helper()
	co, err := coordinator.New(coordinator.Config{
		GRPCAddr:          "127.0.0.1:0",
		HTTPAddr:          "127.0.0.1:0",
		HeartbeatInterval: 50 * time.Millisecond,
		HeartbeatTimeout:  5 * time.Second,
		ScheduleTimeout:   -1,
		CheckpointStorage: "file://" + t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	return co, "http://" + co.HTTPAddr()
}

// eventually polls cond every 20ms until it holds, failing the test with
// cond's last message after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeFile writes content to name in a fresh temporary directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// decode parses JSON output into v, failing the test on malformed output.
func decode(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r)
	}
}

// TestMain fails the run when a goroutine of a coordinator or worker that a
// test (or a verb it ran) started outlives the tests.
func TestMain(m *testing.M) { leakcheck.Main(m, "weir/coordinator.", "weir/worker.") }
