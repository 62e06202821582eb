package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// TestDevExample runs `weir dev --example` as a user would (`make run`): it
// comes up, runs the ip-visits job on two workers with loadgen feeding it,
// the job writes window results, and Ctrl-C stops it and every process it
// started, with exit 0.
func TestDevExample(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin := proc.Binary(t)
	dir := proc.ArtifactDir(t)
	dataDir := t.TempDir()
	httpAddr, grpcAddr, kafkaAddr := proc.FreeAddr(t), proc.FreeAddr(t), proc.FreeAddr(t)
	weir := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// weir dev makes an admin token under its data directory.
		tok, _ := os.ReadFile(filepath.Join(dataDir, "admin.token"))
		return proc.Run(t, ctx, bin, []string{"WEIR_COORDINATOR=http://" + httpAddr, "WEIR_TOKEN=" + strings.TrimSpace(string(tok))}, args...)
	}

	dev := proc.Start(t, dir, bin, "dev", nil, "dev", "--example", "--data-dir", dataDir,
		"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--kafka-addr", kafkaAddr, "--etcd-addr", proc.FreeAddr(t),
		"--workers", "2", "--slots", "4")
	// Whatever happens, the children's logs end up next to dev.log.
	t.Cleanup(func() { copyLogs(t, filepath.Join(dataDir, "logs"), dir) })

	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		if dev.Exited() {
			t.Fatalf("weir dev exited during start-up:\n%s", readFile(dev.LogPath))
		}
		log := readFile(dev.LogPath)
		return strings.Contains(log, "web UI and REST API: http://"+httpAddr), log
	})

	var jobID string
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		if dev.Exited() {
			t.Fatalf("weir dev exited:\n%s", readFile(dev.LogPath))
		}
		out, code := weir("jobs", "-o", "json")
		if code != 0 {
			return false, out
		}
		var jobs []struct{ ID, Name, State string }
		if err := json.Unmarshal([]byte(out), &jobs); err != nil {
			return false, out
		}
		for _, j := range jobs {
			if j.Name == "ip-visits" {
				jobID = j.ID
				return j.State == "RUNNING", out
			}
		}
		return false, out
	})
	if log := readFile(dev.LogPath); !strings.Contains(log, "example job:         "+jobID) {
		t.Errorf("weir dev does not print the example job's id %s:\n%s", jobID, log)
	}

	// Secure by default: without the token the REST API refuses.
	if out, code := weir("jobs", "--token", ""); code != 1 || !strings.Contains(out, "needs a token") {
		t.Errorf("weir jobs without a token against weir dev: want exit 1 and \"needs a token\", got %d\n%s", code, out)
	}
	out, code := weir("workers", "-o", "json")
	var workers []struct {
		ID    string
		Slots int
	}
	if err := json.Unmarshal([]byte(out), &workers); code != 0 || err != nil {
		t.Fatalf("weir workers: exit %d, %v\n%s", code, err, out)
	}
	if len(workers) != 2 || workers[0].Slots != 4 || workers[1].Slots != 4 {
		t.Errorf("want 2 workers with 4 slots each, got %s", out)
	}
	// Secure by default: the workers registered over mutual TLS with the
	// local CA weir dev made under its data directory.
	if log := readFile(dev.LogPath); !strings.Contains(log, "cluster connections: mutual TLS, local CA "+filepath.Join(dataDir, "tls", "ca.crt")) {
		t.Errorf("weir dev does not say the cluster runs with mutual TLS:\n%s", log)
	}
	tok, _ := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if ov, err := api.NewClient("http://"+httpAddr, api.WithToken(strings.TrimSpace(string(tok)))).Overview(context.Background()); err != nil || ov.Insecure {
		t.Errorf("overview %+v %v, want insecure false", ov, err)
	}

	// The job writes window results to ip-visits; loadgen's event time runs
	// 10× faster than the wall clock at the default rate, so the first
	// one-minute windows fire within seconds.
	var last string
	proc.Eventually(t, 2*time.Minute, func() (bool, string) {
		if dev.Exited() {
			t.Fatalf("weir dev exited:\n%s", readFile(dev.LogPath))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		outs, bad, err := accesslog.ReadOutputs(ctx, []string{kafkaAddr}, "ip-visits", 300*time.Millisecond)
		if err != nil {
			return false, err.Error()
		}
		if len(bad) > 0 {
			t.Fatalf("malformed output on ip-visits: %v", bad[0])
		}
		last = fmt.Sprintf("%d window results", len(outs))
		return len(outs) > 0, last
	})
	t.Logf("ip-visits: %s", last)

	// Usage errors and a second dev on the same ports fail before starting
	// anything.
	if out, code := weir("dev", "--workers", "0", "--data-dir", t.TempDir()); code != 2 {
		t.Errorf("weir dev --workers 0: want exit 2, got %d\n%s", code, out)
	}
	out, code = weir("dev", "--data-dir", t.TempDir(), "--http-addr", httpAddr, "--grpc-addr", grpcAddr,
		"--kafka-addr", kafkaAddr, "--etcd-addr", proc.FreeAddr(t))
	if code != 1 || !strings.Contains(out, "address "+httpAddr+" is not free") {
		t.Errorf("second weir dev on the same ports: want exit 1 and \"address %s is not free\", got %d\n%s", httpAddr, code, out)
	}
	if dev.Exited() {
		t.Fatalf("the second weir dev disturbed the first:\n%s", readFile(dev.LogPath))
	}

	// Every child is running now: broker, coordinator, 2 workers, loadgen.
	addrs := []string{httpAddr, grpcAddr, kafkaAddr}
	if kids := processesNaming(t, addrs); len(kids) != 5 {
		t.Fatalf("want 5 child processes of weir dev, found %d:\n%s", len(kids), strings.Join(kids, "\n"))
	}

	if err := dev.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, err := dev.Wait(20 * time.Second)
	if err != nil {
		t.Fatalf("weir dev did not stop within 20s of SIGINT: %v\n%s", err, readFile(dev.LogPath))
	}
	if code != 0 {
		t.Fatalf("weir dev exited %d after SIGINT, want 0:\n%s", code, readFile(dev.LogPath))
	}
	if !strings.Contains(readFile(dev.LogPath), "stopping") {
		t.Errorf("weir dev did not say it was stopping:\n%s", readFile(dev.LogPath))
	}
	// weir dev waits for its children, so they are gone when it has exited.
	if kids := processesNaming(t, addrs); len(kids) != 0 {
		t.Errorf("children of weir dev still running after it exited:\n%s", strings.Join(kids, "\n"))
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is still in use after weir dev exited: %v", a, err)
			continue
		}
		l.Close()
	}
}

// processesNaming lists the processes (pid and command line) whose command
// line contains one of addrs: every child of weir dev is given one of its
// addresses (the broker, loadgen: --kafka-addr; coordinator, workers:
// --grpc-addr). weir dev itself is left out.
func processesNaming(t *testing.T, addrs []string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil || len(raw) == 0 {
			continue // gone, or a zombie
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		cmdline := strings.Join(args, " ")
		if len(args) > 1 && args[1] == "dev" && !(len(args) > 2 && args[2] == "kafka") {
			continue
		}
		for _, a := range addrs {
			if strings.Contains(cmdline, a) {
				found = append(found, pid+": "+cmdline)
				break
			}
		}
	}
	return found
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}

// copyLogs copies the logs weir dev wrote for its children into the test's
// artifact directory.
func copyLogs(t *testing.T, from, to string) {
	entries, err := os.ReadDir(from)
	if err != nil {
		return
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(to, "dev-"+e.Name()), b, 0o644); err != nil {
			t.Logf("keep %s: %v", e.Name(), err)
		}
	}
}

// TestDevInsecure: --insecure opts out of the cluster's mutual TLS, and
// says so: on weir dev's output, in the processes' logs and in the
// overview the web UI reads; no local CA is made.
func TestDevInsecure(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin := proc.Binary(t)
	dir := proc.ArtifactDir(t)
	dataDir := t.TempDir()
	httpAddr := proc.FreeAddr(t)
	// Some settings from a config file: one worker (the command line's 1
	// wins over its 3) and JSON logs, which weir dev passes on.
	conf := filepath.Join(t.TempDir(), "dev.yaml")
	if err := os.WriteFile(conf, []byte("workers: 3\nlog-format: json\ninsecure: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := proc.Start(t, dir, bin, "dev", nil, "dev", "--config", conf, "--data-dir", dataDir, "--workers", "1",
		"--http-addr", httpAddr, "--grpc-addr", proc.FreeAddr(t), "--kafka-addr", proc.FreeAddr(t), "--etcd-addr", proc.FreeAddr(t))
	t.Cleanup(func() { copyLogs(t, filepath.Join(dataDir, "logs"), dir) })
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		if dev.Exited() {
			t.Fatalf("weir dev exited during start-up:\n%s", readFile(dev.LogPath))
		}
		log := readFile(dev.LogPath)
		return strings.Contains(log, "web UI and REST API: http://"+httpAddr), log
	})
	log := readFile(dev.LogPath)
	if !strings.Contains(log, "weir dev: INSECURE (--insecure)") || !strings.Contains(log, "cluster connections: INSECURE") {
		t.Errorf("weir dev --insecure does not say so:\n%s", log)
	}
	if co := readFile(filepath.Join(dataDir, "logs", "coordinator.log")); !strings.Contains(co, "INSECURE: no --tls-cert") {
		t.Errorf("the coordinator does not log INSECURE:\n%s", co)
	}
	for name, msg := range map[string]string{"coordinator.log": "coordinator leads", "worker-1.log": "worker started"} {
		if !hasJSONLine(readFile(filepath.Join(dataDir, "logs", name)), msg) {
			t.Errorf("%s has no JSON log line %q", name, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "logs", "worker-2.log")); !os.IsNotExist(err) {
		t.Errorf("a second worker started: the command line's --workers 1 should win over the config file: %v", err)
	}
	tok, _ := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if ov, err := api.NewClient("http://"+httpAddr, api.WithToken(strings.TrimSpace(string(tok)))).Overview(context.Background()); err != nil ||
		!slices.Equal(ov.InsecureReasons, []string{"cluster connections without mutual TLS"}) {
		t.Errorf("overview %+v %v, want insecure: cluster connections without mutual TLS", ov, err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "tls")); !os.IsNotExist(err) {
		t.Errorf("weir dev --insecure made %s/tls: %v", dataDir, err)
	}
	if err := dev.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, err := dev.Wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("weir dev after SIGINT: exit %d, %v", code, err)
	}
}

// hasJSONLine says whether log has a JSON line (--log-format json) with
// message msg.
func hasJSONLine(log, msg string) bool {
	for _, line := range strings.Split(log, "\n") {
		var l struct {
			Msg   string `json:"msg"`
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg && l.Level != "" {
			return true
		}
	}
	return false
}
