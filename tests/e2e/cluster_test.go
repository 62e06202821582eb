package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// cluster is a multi-process weir cluster for one test.
type cluster struct {
	t           *testing.T
	bin         string
	dir         string
	kafkaAddr   string
	grpcAddr    string
	httpAddr    string
	storage     string // checkpoint storage root, a local directory
	kafka       *proc.Process
	coordinator *proc.Process
	workers     map[string]*proc.Process // by worker id, killed ones included
	api         *api.Client
}

func startCluster(t *testing.T, workers, slots int) *cluster {
	t.Helper()
	c := &cluster{
		t:         t,
		bin:       proc.Binary(t),
		dir:       proc.ArtifactDir(t),
		kafkaAddr: proc.FreeAddr(t),
		grpcAddr:  proc.FreeAddr(t),
		httpAddr:  proc.FreeAddr(t),
		storage:   filepath.Join(t.TempDir(), "checkpoints"),
		workers:   map[string]*proc.Process{},
	}
	c.api = api.NewClient("http://" + c.httpAddr)
	c.kafka = proc.Start(t, c.dir, c.bin, "kafka", nil,
		"dev", "kafka", "--addr", c.kafkaAddr, "--data-dir", filepath.Join(t.TempDir(), "kafka"))
	c.coordinator = proc.Start(t, c.dir, c.bin, "coordinator", nil,
		"coordinator", "--grpc-addr", c.grpcAddr, "--http-addr", c.httpAddr,
		"--checkpoint-storage", "file://"+c.storage)
	for i := 0; i < workers; i++ {
		c.startWorker(fmt.Sprintf("worker-%d", i+1), slots)
	}
	c.waitWorkers(workers)
	return c
}

// startWorker starts one more worker process with the given id; its log is
// <id>.log in the artifact directory.
func (c *cluster) startWorker(id string, slots int) *proc.Process {
	c.t.Helper()
	p := proc.Start(c.t, c.dir, c.bin, id, nil,
		"worker", "--coordinator", c.grpcAddr, "--slots", strconv.Itoa(slots), "--id", id)
	c.workers[id] = p
	return p
}

// waitWorkers waits until exactly n workers are registered.
func (c *cluster) waitWorkers(n int) {
	c.t.Helper()
	proc.Eventually(c.t, 30*time.Second, func() (bool, string) {
		out, code := c.weir("workers", "-o", "json")
		if code != 0 {
			return false, out
		}
		var ws []map[string]any
		if err := json.Unmarshal([]byte(out), &ws); err != nil {
			return false, out
		}
		return len(ws) == n, fmt.Sprintf("%d workers registered, want %d", len(ws), n)
	})
}

// weir runs a client verb against the cluster.
func (c *cluster) weir(args ...string) (string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := []string{"WEIR_COORDINATOR=http://" + c.httpAddr, "KAFKA_BROKERS=" + c.kafkaAddr}
	return proc.Run(c.t, ctx, c.bin, env, args...)
}

func (c *cluster) jobState(id string) string {
	out, code := c.weir("status", id, "-o", "json")
	if code != 0 {
		return "unknown: " + out
	}
	var j struct {
		State   string `json:"state"`
		Failure string `json:"failure_cause"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return "unparsable: " + out
	}
	if j.Failure != "" {
		return j.State + ": " + j.Failure
	}
	return j.State
}

// TestIPVisitsMultiProcess is the canonical job on a real cluster: a broker,
// a coordinator and two workers as separate processes, 200k events at
// parallelism 4, and an exact match from weir verify.
func TestIPVisitsMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const events, seed = 200000, 7
	c := startCluster(t, 2, 4)

	// The job runs as a stream: it is running before the events arrive, as
	// in production. (A backlog written before the job starts would let one
	// source subtask run minutes of event time ahead of another that starts
	// later, so whether the late events are late would depend on timing.)
	out, code := c.weir("submit", "../../examples/ip-visits.yaml", "-p", "4")
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s", code, out)
	}
	id := strings.TrimSpace(out)
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		s := c.jobState(id)
		return s == "RUNNING", s
	})

	out, code = c.weir("loadgen", "access-log", "--brokers", c.kafkaAddr, "--topic", "access-log",
		"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4", "--rate", "25000")
	if code != 0 {
		t.Fatalf("loadgen: exit %d\n%s", code, out)
	}
	t.Log(strings.TrimSpace(out))

	var last string
	proc.Eventually(t, 3*time.Minute, func() (bool, string) {
		if s := c.jobState(id); s != "RUNNING" {
			t.Fatalf("job %s is %s", id, s)
		}
		out, code := c.weir("verify", "ip-visits", "--brokers", c.kafkaAddr, "--topic", "ip-visits",
			"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4", "--idle", "500ms")
		last = out
		return code == 0, out
	})
	t.Logf("verify: %s", strings.TrimSpace(last))

	// The job is listed, and cancelling it ends it.
	if out, code := c.weir("jobs"); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("weir jobs: exit %d\n%s", code, out)
	}
	if out, code := c.weir("cancel", id); code != 0 {
		t.Fatalf("cancel: exit %d\n%s", code, out)
	}
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		s := c.jobState(id)
		return strings.HasPrefix(s, "CANCELLED"), s
	})
	resp, err := http.Get("http://" + c.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
}
