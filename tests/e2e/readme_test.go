package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// readmeBlocks returns the ```sh blocks of README.md that a user runs
// against `make run`'s cluster: those calling bin/weir. A ```console
// block is a walk-through on a cluster of its own (watching a failover
// starts a second weir dev) and is not run here.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			b := strings.Join(cur, "\n")
			if strings.Contains(b, "bin/weir ") {
				blocks = append(blocks, b)
			}
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestReadmeCommands runs the README's commands as written, each block as
// one bash script, against `weir dev --example` (what `make run` starts),
// in a directory where bin/weir is the built binary and .weir is dev's data
// directory. Only the addresses differ from make run's: the test's come
// through WEIR_COORDINATOR and KAFKA_BROKERS, which the README's verbs
// read. The quick start stops the example job with a savepoint and
// resumes it rescaled; the check runs a copy of the job on its own topics
// and verifies its output exactly.
func TestReadmeCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	blocks := readmeBlocks(t)
	all := strings.Join(blocks, "\n")
	for _, want := range []string{"savepoint ip-visits --stop --wait", "--from-savepoint", "bin/weir loadgen", "bin/weir verify"} {
		if !strings.Contains(all, want) {
			t.Fatalf("README.md's bin/weir blocks do not contain %q:\n%s", want, all)
		}
	}

	bin := proc.Binary(t)
	dir := proc.ArtifactDir(t)
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"bin/weir": bin, "examples": examples} {
		if err := os.Symlink(target, filepath.Join(work, link)); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(work, ".weir")
	httpAddr, kafkaAddr := proc.FreeAddr(t), proc.FreeAddr(t)
	dev := proc.Start(t, dir, bin, "dev", nil, "dev", "--example", "--data-dir", dataDir,
		"--http-addr", httpAddr, "--grpc-addr", proc.FreeAddr(t), "--kafka-addr", kafkaAddr, "--etcd-addr", proc.FreeAddr(t))
	t.Cleanup(func() {
		_ = dev.Signal(syscall.SIGINT)
		_, _ = dev.Wait(30 * time.Second)
		copyLogs(t, filepath.Join(dataDir, "logs"), dir)
	})
	env := []string{"WEIR_COORDINATOR=http://" + httpAddr, "KAFKA_BROKERS=" + kafkaAddr}
	weir := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		tok, _ := os.ReadFile(filepath.Join(dataDir, "admin.token"))
		return proc.Run(t, ctx, bin, append(env, "WEIR_TOKEN="+strings.TrimSpace(string(tok))), args...)
	}
	type status struct {
		State    string `json:"state"`
		Vertices []struct {
			Parallelism int `json:"parallelism"`
		} `json:"vertices"`
	}
	jobStatus := func(ref string) (status, string) {
		out, code := weir("status", ref, "-o", "json")
		var s status
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
			return status{}, out
		}
		return s, out
	}
	proc.Eventually(t, 2*time.Minute, func() (bool, string) {
		if dev.Exited() {
			t.Fatalf("weir dev exited:\n%s", readFile(dev.LogPath))
		}
		s, out := jobStatus("ip-visits")
		return s.State == "RUNNING", out
	})

	// A user runs the blocks in one terminal: what one block exports, the
	// next one has.
	var exports []string
	for i, b := range blocks {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		script := strings.Join(append(slices.Clone(exports), b), "\n")
		for _, line := range strings.Split(b, "\n") {
			if strings.HasPrefix(line, "export ") {
				exports = append(exports, line)
			}
		}
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = work
		cmd.Env = append(append(os.Environ(), env...), "WEIR_TOKEN=")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("README block %d failed: %v\n--- block:\n%s\n--- output:\n%s", i+1, err, b, out.String())
		}
		t.Logf("README block %d:\n%s", i+1, out.String())
		if strings.Contains(b, "--from-savepoint") {
			// The resumed job runs rescaled to the README's -p.
			proc.Eventually(t, 2*time.Minute, func() (bool, string) {
				s, out := jobStatus("ip-visits")
				return s.State == "RUNNING" && len(s.Vertices) > 0 && s.Vertices[0].Parallelism == 4, out
			})
		}
		if strings.Contains(b, "bin/weir verify") && !strings.Contains(out.String(), "lost 0  duplicated 0  wrong 0  unexpected 0") {
			t.Fatalf("README block %d: verify did not report an exact match:\n%s", i+1, out.String())
		}
	}
}
