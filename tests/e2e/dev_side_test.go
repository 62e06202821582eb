package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// devCluster is one weir dev process and the addresses it was given.
type devCluster struct {
	dev                 *proc.Process
	dataDir, http       string
	workerData, workerH string
	api                 *api.Client
}

func startDev(t *testing.T, artifacts, name string, workers int, workerData, workerHTTP string) *devCluster {
	t.Helper()
	d := &devCluster{dataDir: t.TempDir(), http: proc.FreeAddr(t), workerData: workerData, workerH: workerHTTP}
	dir := filepath.Join(artifacts, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d.dev = proc.Start(t, dir, proc.Binary(t), "dev", nil, "dev", "--data-dir", d.dataDir, "--workers", strconv.Itoa(workers), "--slots", "1",
		"--http-addr", d.http, "--grpc-addr", proc.FreeAddr(t), "--kafka-addr", proc.FreeAddr(t),
		"--etcd-addr", proc.FreeAddr(t), "--etcd-peer-addr", proc.FreeAddr(t),
		"--worker-data-addr", workerData, "--worker-http-addr", workerHTTP)
	t.Cleanup(func() { copyLogs(t, filepath.Join(d.dataDir, "logs"), dir) })
	proc.Eventually(t, 90*time.Second, func() (bool, string) {
		if d.dev.Exited() {
			t.Fatalf("weir dev %s exited during start-up:\n%s", name, readFile(d.dev.LogPath))
		}
		log := readFile(d.dev.LogPath)
		return strings.Contains(log, "web UI and REST API: http://"+d.http), log
	})
	tok, _ := os.ReadFile(filepath.Join(d.dataDir, "admin.token"))
	d.api = api.NewClient("http://"+d.http, api.WithToken(strings.TrimSpace(string(tok))))
	return d
}

func (d *devCluster) workers(t *testing.T) []api.Worker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := d.api.Workers(ctx)
	if err != nil {
		t.Fatalf("workers of %s: %v", d.http, err)
	}
	return ws
}

// workerPid finds the weir worker process serving data on addr.
func workerPid(t *testing.T, addr string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 1 && args[1] == "worker" && strings.Contains(string(b), "\x00--data-addr\x00"+addr+"\x00") {
			return pid
		}
	}
	t.Fatalf("no worker process with --data-addr %s", addr)
	return 0
}

// TestDevSideBySideRestartsWorkers: two weir dev clusters run at once on
// this machine, every port they open given by a flag (one with its
// worker's ports fixed, the other's picked free); a worker of the first
// killed with SIGKILL is started again by weir dev, which keeps running,
// and registers again on the same addresses.
func TestDevSideBySideRestartsWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	aData, aHTTP := proc.FreeAddr(t), proc.FreeAddr(t)
	artifacts := proc.ArtifactDir(t)
	a := startDev(t, artifacts, "a", 1, aData, aHTTP)
	b := startDev(t, artifacts, "b", 2, "127.0.0.1:0", "127.0.0.1:0")

	wa := a.workers(t)
	if len(wa) != 1 || wa[0].DataAddr != aData || wa[0].HTTPAddr != aHTTP {
		t.Fatalf("cluster a's workers %+v, want one on data %s, HTTP %s", wa, aData, aHTTP)
	}
	var wb []api.Worker
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		wb = b.workers(t)
		return len(wb) == 2, fmt.Sprintf("%d workers in cluster b", len(wb))
	})
	for _, w := range wb {
		if w.DataAddr == aData || w.HTTPAddr == aHTTP || w.DataAddr == w.HTTPAddr {
			t.Fatalf("cluster b's worker %s shares an address with cluster a's: %+v", w.ID, w)
		}
	}

	pid := workerPid(t, aData)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		if a.dev.Exited() {
			t.Fatalf("weir dev exited after a worker died:\n%s", readFile(a.dev.LogPath))
		}
		log := readFile(a.dev.LogPath)
		return strings.Contains(log, "worker-1 exited (signal: killed); starting it again in 1s") &&
			strings.Contains(log, "worker-1 started again"), log
	})
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		ws := a.workers(t)
		return len(ws) == 1 && ws[0].DataAddr == aData && workerPid(t, aData) != pid, fmt.Sprintf("workers %+v", ws)
	})
	if len(b.workers(t)) != 2 {
		t.Fatal("cluster b lost a worker")
	}
	for name, d := range map[string]*devCluster{"a": a, "b": b} {
		if err := d.dev.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code, err := d.dev.Wait(60 * time.Second); err != nil || code != 0 {
			t.Fatalf("weir dev %s after SIGINT: exit %d, %v", name, code, err)
		}
	}
}
