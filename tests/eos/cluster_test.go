package eos

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/accesslog"
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

// cluster is a multi-process weir cluster for one test (proc.Cluster)
// with this package's helpers.
type cluster struct{ *proc.Cluster }

func startCluster(t *testing.T, bin string, workers, slots int) *cluster {
	t.Helper()
	return &cluster{proc.StartCluster(t, bin, workers, slots)}
}

// ipVisitsEOS writes the ip-visits example with an exactly-once sink, a
// checkpoint every second and a quick fixed restart.
func (c *cluster) ipVisitsEOS() string {
	c.T.Helper()
	return c.ipVisitsEOSEvery("1s")
}

// ipVisitsEOSEvery is ipVisitsEOS with a checkpoint every interval.
func (c *cluster) ipVisitsEOSEvery(interval string) string {
	c.T.Helper()
	base, err := os.ReadFile("../../examples/ip-visits.yaml")
	if err != nil {
		c.T.Fatal(err)
	}
	s := string(base)
	for old, repl := range map[string]string{
		"  interval: ${CHECKPOINT_INTERVAL:-10s}\n": "  interval: " + interval + "\nrestart: {strategy: fixed, attempts: 20, delay: 500ms}\n",
		"        key: ip\n        format: json":     "        key: ip\n        format: json\n        delivery: exactly-once",
	} {
		if !strings.Contains(s, old) {
			c.T.Fatalf("examples/ip-visits.yaml no longer contains %q", old)
		}
		s = strings.Replace(s, old, repl, 1)
	}
	if !strings.HasSuffix(strings.TrimSpace(s), "delivery: exactly-once") {
		c.T.Fatalf("the sink is not the last node of examples/ip-visits.yaml:\n%s", s)
	}
	path := filepath.Join(c.T.TempDir(), "ip-visits-eos.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		c.T.Fatal(err)
	}
	return path
}

// sinkWorkers returns the workers running the ip-visits sink's subtasks.
func (c *cluster) sinkWorkers(id string) []string {
	c.T.Helper()
	return c.nodeWorkers(id, "ip-visits")
}

// nodeWorkers returns the workers running the subtasks of node.
func (c *cluster) nodeWorkers(id, node string) []string {
	c.T.Helper()
	seen := map[string]bool{}
	var ws []string
	for _, v := range c.Job(id).Vertices {
		if !slices.Contains(v.Nodes, node) {
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

// verifyCaughtUp polls weir verify (read_committed) until nothing is lost
// and returns the result; duplicated output fails at once, since it never
// goes away.
func (c *cluster) verifyCaughtUp(events, seed int, timeout time.Duration) accesslog.Report {
	c.T.Helper()
	return c.verifyTopic("ip-visits", events, seed, timeout)
}

// verifyTopic is verifyCaughtUp for the output topic topic; extra are
// more flags for weir verify (--kafka-tls-…, --kafka-sasl-…).
func (c *cluster) verifyTopic(topic string, events, seed int, timeout time.Duration, extra ...string) accesslog.Report {
	c.T.Helper()
	var r accesslog.Report
	proc.Eventually(c.T, timeout, func() (bool, string) {
		out, code := c.Weir(append([]string{"verify", "ip-visits", "--brokers", c.KafkaAddr, "--topic", topic,
			"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4",
			"--idle", "500ms", "-o", "json", "--allow-duplicates"}, extra...)...)
		r = accesslog.Report{}
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&r); err != nil {
			c.T.Fatalf("weir verify: exit %d, not JSON: %v\n%s", code, err, out)
		}
		if r.Duplicated > 0 || len(r.Malformed) > 0 {
			c.T.Fatalf("weir verify: %s", r)
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
