package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// cluster is a multi-process weir cluster for one test (proc.Cluster)
// with this package's helpers.
type cluster struct{ *proc.Cluster }

func startCluster(t *testing.T, workers, slots int) *cluster {
	t.Helper()
	return &cluster{proc.StartCluster(t, proc.Binary(t), workers, slots)}
}

func (c *cluster) jobState(id string) string {
	out, code := c.Weir("status", id, "-o", "json")
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
	out, code := c.Weir("submit", "../../examples/ip-visits.yaml", "-p", "4")
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s", code, out)
	}
	id := strings.TrimSpace(out)
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		s := c.jobState(id)
		return s == "RUNNING", s
	})

	out, code = c.Weir("loadgen", "access-log", "--brokers", c.KafkaAddr, "--topic", "access-log",
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
		out, code := c.Weir("verify", "ip-visits", "--brokers", c.KafkaAddr, "--topic", "ip-visits",
			"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4", "--idle", "500ms")
		last = out
		return code == 0, out
	})
	t.Logf("verify: %s", strings.TrimSpace(last))

	// The job is listed, and cancelling it ends it.
	if out, code := c.Weir("jobs"); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("weir jobs: exit %d\n%s", code, out)
	}
	if out, code := c.Weir("cancel", id); code != 0 {
		t.Fatalf("cancel: exit %d\n%s", code, out)
	}
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		s := c.jobState(id)
		return strings.HasPrefix(s, "CANCELLED"), s
	})
	resp, err := http.Get("http://" + c.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
}
