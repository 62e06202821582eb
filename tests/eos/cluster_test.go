package eos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// failpointBinary builds weir with the failpoints build tag once per test
// binary (WEIR_FAILPOINT_BINARY names a prebuilt one).
func failpointBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WEIR_FAILPOINT_BINARY"); p != "" {
		return p
	}
	fpOnce.Do(func() {
		dir, err := os.MkdirTemp("", "weir-fp-")
		if err != nil {
			fpErr = err
			return
		}
		fpPath = filepath.Join(dir, "weir")
		cmd := exec.Command("go", "build", "-tags", "failpoints", "-o", fpPath, "./cmd/weir")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fpErr = fmt.Errorf("go build -tags failpoints ./cmd/weir: %v\n%s", err, out)
		}
	})
	if fpErr != nil {
		t.Fatal(fpErr)
	}
	return fpPath
}

var (
	fpOnce sync.Once
	fpPath string
	fpErr  error
)

// cluster is a multi-process weir cluster for one test.
type cluster struct {
	t         *testing.T
	bin       string
	dir       string
	kafkaAddr string
	grpcAddr  string
	httpAddr  string
	workers   map[string]*proc.Process
	api       *api.Client
}

func startCluster(t *testing.T, bin string, workers, slots int) *cluster {
	t.Helper()
	c := &cluster{
		t: t, bin: bin, dir: proc.ArtifactDir(t),
		kafkaAddr: proc.FreeAddr(t), grpcAddr: proc.FreeAddr(t), httpAddr: proc.FreeAddr(t),
		workers: map[string]*proc.Process{},
	}
	c.api = api.NewClient("http://" + c.httpAddr)
	proc.Start(t, c.dir, c.bin, "kafka", nil, "dev", "kafka", "--addr", c.kafkaAddr, "--data-dir", filepath.Join(t.TempDir(), "kafka"))
	proc.Start(t, c.dir, c.bin, "coordinator", nil, "coordinator", "--grpc-addr", c.grpcAddr, "--http-addr", c.httpAddr,
		"--checkpoint-storage", "file://"+filepath.Join(t.TempDir(), "checkpoints"))
	for i := 1; i <= workers; i++ {
		c.startWorker(fmt.Sprintf("worker-%d", i), slots, nil)
	}
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		ws, err := c.api.Workers(c.ctx())
		if err != nil {
			return false, err.Error()
		}
		return len(ws) == workers, fmt.Sprintf("%d workers registered, want %d", len(ws), workers)
	})
	return c
}

func (c *cluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

func (c *cluster) startWorker(id string, slots int, env []string) *proc.Process {
	c.t.Helper()
	p := proc.Start(c.t, c.dir, c.bin, id, env, "worker", "--coordinator", c.grpcAddr, "--slots", strconv.Itoa(slots), "--id", id)
	c.workers[id] = p
	return p
}

func (c *cluster) weir(args ...string) (string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return proc.Run(c.t, ctx, c.bin, []string{"WEIR_COORDINATOR=http://" + c.httpAddr, "KAFKA_BROKERS=" + c.kafkaAddr}, args...)
}

// ipVisitsEOS writes the ip-visits example with an exactly-once sink, a
// checkpoint every second and a quick fixed restart.
func (c *cluster) ipVisitsEOS() string {
	c.t.Helper()
	base, err := os.ReadFile("../../examples/ip-visits.yaml")
	if err != nil {
		c.t.Fatal(err)
	}
	s := string(base)
	for old, repl := range map[string]string{
		"  interval: ${CHECKPOINT_INTERVAL:-10s}\n": "  interval: 1s\nrestart: {strategy: fixed, attempts: 20, delay: 500ms}\n",
		"        key: ip\n        format: json":     "        key: ip\n        format: json\n        delivery: exactly-once",
	} {
		if !strings.Contains(s, old) {
			c.t.Fatalf("examples/ip-visits.yaml no longer contains %q", old)
		}
		s = strings.Replace(s, old, repl, 1)
	}
	if !strings.HasSuffix(strings.TrimSpace(s), "delivery: exactly-once") {
		c.t.Fatalf("the sink is not the last node of examples/ip-visits.yaml:\n%s", s)
	}
	path := filepath.Join(c.t.TempDir(), "ip-visits-eos.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func (c *cluster) submit(path string, args ...string) string {
	c.t.Helper()
	out, code := c.weir(append([]string{"submit", path}, args...)...)
	if code != 0 {
		c.t.Fatalf("submit: exit %d\n%s", code, out)
	}
	return strings.TrimSpace(out)
}

func (c *cluster) job(id string) *api.Job {
	c.t.Helper()
	j, err := c.api.Job(c.ctx(), id)
	if err != nil {
		c.t.Fatalf("GET job %s: %v", id, err)
	}
	return j
}

func (c *cluster) waitRunning(id string, minAttempt int64, timeout time.Duration) *api.Job {
	c.t.Helper()
	var j *api.Job
	proc.Eventually(c.t, timeout, func() (bool, string) {
		j = c.job(id)
		switch j.State {
		case "FAILED", "CANCELLED", "FINISHED":
			c.t.Fatalf("job %s ended %s: %s", id, j.State, j.FailureCause)
		}
		return j.State == "RUNNING" && j.Attempt >= minAttempt,
			fmt.Sprintf("job %s is %s in attempt %d (want RUNNING in attempt >= %d) %s", id, j.State, j.Attempt, minAttempt, j.Message)
	})
	return j
}

// waitEnded waits for the job to finish, fail or be cancelled.
func (c *cluster) waitEnded(id string, timeout time.Duration) *api.Job {
	c.t.Helper()
	var j *api.Job
	proc.Eventually(c.t, timeout, func() (bool, string) {
		j = c.job(id)
		switch j.State {
		case "FAILED", "CANCELLED", "FINISHED":
			return true, ""
		}
		return false, fmt.Sprintf("job %s is %s in attempt %d %s", id, j.State, j.Attempt, j.Message)
	})
	return j
}

// waitCheckpoint waits for a completed periodic checkpoint of the attempt.
func (c *cluster) waitCheckpoint(id string, attempt int64, timeout time.Duration) int64 {
	c.t.Helper()
	var got int64
	proc.Eventually(c.t, timeout, func() (bool, string) {
		cs, err := c.api.Checkpoints(c.ctx(), id)
		if err != nil {
			return false, err.Error()
		}
		for _, h := range cs.History {
			if h.Status == "COMPLETED" && !h.Savepoint && h.Attempt == attempt {
				got = h.ID
				return true, ""
			}
		}
		return false, fmt.Sprintf("no completed checkpoint in attempt %d yet: %+v", attempt, cs.Counts)
	})
	return got
}

// sinkWorkers returns the workers running the ip-visits sink's subtasks.
func (c *cluster) sinkWorkers(id string) []string {
	c.t.Helper()
	return c.sinkWorkers2(id, "ip-visits")
}

// sinkWorkers2 returns the workers running the subtasks of node sink.
func (c *cluster) sinkWorkers2(id, sink string) []string {
	c.t.Helper()
	seen := map[string]bool{}
	var ws []string
	for _, v := range c.job(id).Vertices {
		if !slicesContains(v.Nodes, sink) {
			continue
		}
		for _, s := range v.Subtasks {
			if s.Worker != "" && !seen[s.Worker] {
				seen[s.Worker] = true
				ws = append(ws, s.Worker)
			}
		}
	}
	return ws
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// verifyCaughtUp polls weir verify (read_committed) until nothing is lost
// and returns the result; duplicated output fails at once, since it never
// goes away.
func (c *cluster) verifyCaughtUp(events, seed int, timeout time.Duration) accesslog.Report {
	c.t.Helper()
	return c.verifyTopic("ip-visits", events, seed, timeout)
}

// verifyTopic is verifyCaughtUp for the output topic topic.
func (c *cluster) verifyTopic(topic string, events, seed int, timeout time.Duration) accesslog.Report {
	c.t.Helper()
	var r accesslog.Report
	proc.Eventually(c.t, timeout, func() (bool, string) {
		out, code := c.weir("verify", "ip-visits", "--brokers", c.kafkaAddr, "--topic", topic,
			"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4",
			"--idle", "500ms", "-o", "json", "--allow-duplicates")
		r = accesslog.Report{}
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&r); err != nil {
			c.t.Fatalf("weir verify: exit %d, not JSON: %v\n%s", code, err, out)
		}
		if r.Duplicated > 0 || len(r.Malformed) > 0 {
			c.t.Fatalf("weir verify: %s", r)
		}
		return r.Lost == 0, r.String()
	})
	return r
}

// checkExactlyOnce fails on any window that is not exactly right: lost,
// duplicated, wrong or unexpected. (Late events are judged against their
// own partition's watermark, so a replay drops the same ones: tests/e2e
// TestLateEventsDroppedAfterRestore.)
func checkExactlyOnce(t *testing.T, r accesslog.Report) {
	t.Helper()
	if r.Lost > 0 || r.Duplicated > 0 || len(r.Malformed) > 0 || r.Wrong > 0 || r.Unexpected > 0 {
		t.Fatalf("verify: %s", r)
	}
}
