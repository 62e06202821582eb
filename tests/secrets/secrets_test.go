// Package secrets checks that a secret a job references never lands
// anywhere but in the worker's memory and the job's own output.
package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

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

func plant(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "planted" + hex.EncodeToString(b)
}

// TestPlantedSecretStaysOnTheWorker plants two secrets, one in a worker's
// environment (${env:…}) and one in its secrets directory (${file:…}),
// runs a checkpointed job that uses both, and greps the job store, the
// checkpoint directory, every REST answer (what the web UI shows) and
// every log line for them: they are in none. The job's output has them,
// so the worker did resolve them.
func TestPlantedSecretStaysOnTheWorker(t *testing.T) {
	envSecret, fileSecret := plant(t), plant(t)
	t.Setenv("WEIR_SECRET_PLANTED", envSecret)
	secrets := t.TempDir()
	if err := os.WriteFile(filepath.Join(secrets, "pw"), []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(spec.SecretsDirEnv, secrets)
	storage := t.TempDir()
	logs := &logBuffer{}
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2, CheckpointStorage: "file://" + storage,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	out := filepath.Join(t.TempDir(), "out")
	id := c.Submit(t, fmt.Sprintf(`name: secrets
parallelism: 2
checkpoint: {interval: 100ms}
restart: {strategy: none}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 3000, rate: 3000}}
  - name: creds
    map: {user: "'${env:WEIR_SECRET_PLANTED}'", pw: "'${file:%s}'"}
  - name: out
    sink: {file: {path: %q}}
`, filepath.Join(secrets, "pw"), out))
	j := c.WaitState(t, id, "FINISHED", 60*time.Second)
	t.Logf("job %s %s", id, j.State)

	// The worker resolved both.
	var output []byte
	if err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			output = append(output, b...)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(output, []byte(envSecret)) || !bytes.Contains(output, []byte(fileSecret)) {
		t.Fatalf("the output lacks the resolved secrets (%d bytes): %.300s", len(output), output)
	}

	check := func(where string, data []byte) {
		t.Helper()
		for _, s := range []string{envSecret, fileSecret} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("a planted secret is in %s", where)
			}
		}
	}
	// Job store and checkpoints: everything under the storage root.
	files := 0
	if err := filepath.WalkDir(storage, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, rerr := os.ReadFile(p)
			if rerr != nil {
				return rerr
			}
			files++
			check(p, b)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cps, err := c.Client().Checkpoints(context.Background(), id)
	if err != nil || cps.Counts.Completed == 0 || files < 3 {
		t.Fatalf("want completed checkpoints and a job store to search: %+v, %d files, %v", cps, files, err)
	}

	// Every REST answer the UI reads, and /metrics.
	base := "http://" + c.Coordinator().HTTPAddr()
	paths := []string{"/api/v1/overview", "/api/v1/workers", "/api/v1/jobs", "/metrics"}
	for _, p := range []string{"", "/spec", "/graph", "/subtasks", "/kafka", "/checkpoints", "/restarts", "/savepoints"} {
		paths = append(paths, "/api/v1/jobs/"+id+p)
	}
	if cps.Latest != nil {
		paths = append(paths, fmt.Sprintf("/api/v1/jobs/%s/checkpoints/%d", id, cps.Latest.ID))
	}
	for _, p := range paths {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		check("GET "+p, body)
		if strings.HasSuffix(p, "/spec") && !bytes.Contains(body, []byte("${env:WEIR_SECRET_PLANTED}")) {
			t.Errorf("the stored spec lost its reference:\n%s", body)
		}
	}
	check("the logs", []byte(logs.String()))
	if logs.String() == "" {
		t.Fatal("no logs were captured to search")
	}
}

// A reference a worker cannot resolve fails the job with the reference
// named, and no value.
func TestUnresolvableSecretFailsTheJob(t *testing.T) {
	c := cluster.New(t, cluster.Config{})
	id := c.Submit(t, `name: nosecret
restart: {strategy: none}
pipeline:
  - source: {datagen: {profile: sequence, count: 10}}
  - map: {user: "'${env:WEIR_SECRET_NOT_SET_ANYWHERE}'", home: "'${env:HOME}'"}
  - sink: {discard: {}}
`)
	j := c.WaitState(t, id, "FAILED", 30*time.Second)
	if !strings.Contains(j.FailureCause, "${env:WEIR_SECRET_NOT_SET_ANYWHERE}: not set on this worker") ||
		!strings.Contains(j.FailureCause, "${env:HOME}: a secret environment variable's name must start with WEIR_SECRET_") {
		t.Fatalf("failure cause %q", j.FailureCause)
	}
	if home := os.Getenv("HOME"); home != "" && strings.Contains(j.FailureCause, home) {
		t.Fatal("the failure shows HOME's value")
	}
}
