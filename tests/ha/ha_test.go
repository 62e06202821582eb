// Package ha tests a weir cluster with several coordinators on etcd, as
// separate processes: a development etcd, a broker, three coordinators with
// --etcd, and workers given every coordinator's address.
package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/internal/proc"
)

type coord struct {
	name, grpc, http string
	p                *proc.Process
}

type cluster struct {
	t       *testing.T
	bin     string
	dir     string
	etcd    string
	kafka   string
	storage string
	coords  []*coord
}

func (c *cluster) startCoordinator(co *coord) {
	co.p = proc.Start(c.t, c.dir, c.bin, co.name, nil, "coordinator",
		"--etcd", c.etcd, "--lease-ttl", "2s", "--grpc-addr", co.grpc, "--http-addr", co.http,
		"--heartbeat-timeout", "3s", "--checkpoint-storage", "file://"+c.storage, "--insecure")
}

func (c *cluster) grpcAddrs() string {
	var as []string
	for _, co := range c.coords {
		as = append(as, co.grpc)
	}
	return strings.Join(as, ",")
}

// health is a coordinator's /healthz: a standby says so and names the
// leader.
type health struct {
	Role   string `json:"role"`
	Leader struct {
		ID string `json:"id"`
	} `json:"leader"`
}

func getHealth(addr string) (health, error) {
	var h health
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + addr + "/healthz")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("%s", resp.Status)
	}
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// leader waits until exactly one live coordinator leads, every live standby
// agrees on it, and returns it.
func (c *cluster) leader(timeout time.Duration) *coord {
	c.t.Helper()
	var lead *coord
	proc.Eventually(c.t, timeout, func() (bool, string) {
		lead = nil
		var named []string
		for _, co := range c.coords {
			if co.p.Exited() {
				continue
			}
			h, err := getHealth(co.http)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", co.name, err)
			}
			if h.Role == "standby" {
				named = append(named, h.Leader.ID)
				continue
			}
			if lead != nil {
				return false, "two coordinators lead"
			}
			lead = co
		}
		if lead == nil {
			return false, "no leader yet"
		}
		for _, n := range named {
			if n != lead.http {
				return false, fmt.Sprintf("a standby names %q, %s leads", n, lead.http)
			}
		}
		return true, ""
	})
	return lead
}

// weir runs a client verb against any coordinator: standbys redirect.
func (c *cluster) weir(via *coord, args ...string) (string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := []string{"WEIR_COORDINATOR=http://" + via.http, "KAFKA_BROKERS=" + c.kafka, "CHECKPOINT_INTERVAL=1s"}
	return proc.Run(c.t, ctx, c.bin, env, args...)
}

type jobStatus struct {
	State   string `json:"state"`
	Attempt int64  `json:"attempt"`
}

func (c *cluster) job(via *coord, id string) (jobStatus, string) {
	out, code := c.weir(via, "status", id, "-o", "json")
	var j jobStatus
	if code != 0 {
		return j, out
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return j, out
	}
	return j, ""
}

// TestLeaderKills runs ip-visits on three coordinators sharing etcd and
// SIGKILLs the leader twice while it runs: each time a standby takes over,
// the workers register with it and report the subtasks they kept running,
// the new leader adopts the job's attempt as it runs, and in the end the exactly-once Kafka sink's output matches the
// model exactly: nothing lost, duplicated or wrong.
func TestLeaderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const events, seed = 300000, 11
	c := &cluster{t: t, bin: proc.Binary(t), dir: proc.ArtifactDir(t),
		etcd: proc.FreeAddr(t), kafka: proc.FreeAddr(t), storage: filepath.Join(t.TempDir(), "checkpoints")}
	proc.Start(t, c.dir, c.bin, "etcd", nil, "dev", "etcd", "--addr", c.etcd, "--data-dir", filepath.Join(t.TempDir(), "etcd"))
	proc.Start(t, c.dir, c.bin, "kafka", nil, "dev", "kafka", "--addr", c.kafka, "--data-dir", filepath.Join(t.TempDir(), "kafka"))
	for i := range 3 {
		co := &coord{name: fmt.Sprintf("coordinator-%d", i+1), grpc: proc.FreeAddr(t), http: proc.FreeAddr(t)}
		c.coords = append(c.coords, co)
		c.startCoordinator(co)
	}
	lead := c.leader(60 * time.Second)
	t.Logf("%s leads", lead.name)
	for i := range 3 {
		id := fmt.Sprintf("worker-%d", i+1)
		proc.Start(t, c.dir, c.bin, id, nil, "worker", "--coordinator", c.grpcAddrs(), "--slots", "4", "--id", id, "--allowed-paths", c.storage)
	}
	// Submitted through a standby: it redirects to the leader.
	var standby *coord
	for _, co := range c.coords {
		if co != lead {
			standby = co
			break
		}
	}
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		out, code := c.weir(standby, "workers", "-o", "json")
		var ws []any
		_ = json.Unmarshal([]byte(out), &ws)
		return code == 0 && len(ws) == 3, out
	})
	data, err := os.ReadFile("../../examples/ip-visits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(t.TempDir(), "ip-visits.yaml")
	eos := strings.Replace(string(data), "        topic: ${OUTPUT_TOPIC:-ip-visits}\n", "        topic: ${OUTPUT_TOPIC:-ip-visits}\n        delivery: exactly-once\n", 1)
	if err := os.WriteFile(specFile, []byte(eos), 0o644); err != nil || eos == string(data) {
		t.Fatalf("spec with the exactly-once sink: %v", err)
	}
	out, code := c.weir(standby, "submit", specFile, "-p", "4")
	if code != 0 {
		t.Fatalf("submit through a standby: exit %d\n%s", code, out)
	}
	id := strings.TrimSpace(out)
	// The overview, read through a standby, names the leader.
	var ov struct {
		Coordinator struct {
			ID   string `json:"id"`
			Role string `json:"role"`
		} `json:"coordinator"`
	}
	resp, err := http.Get("http://" + standby.http + "/api/v1/overview")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&ov)
	resp.Body.Close()
	if err != nil || ov.Coordinator.Role != "leader" || ov.Coordinator.ID != lead.http {
		t.Fatalf("overview through a standby: %+v %v, want leader %s", ov, err, lead.http)
	}
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		j, why := c.job(lead, id)
		return j.State == "RUNNING", j.State + why
	})
	loadgen := proc.Start(t, c.dir, c.bin, "loadgen", nil, "loadgen", "access-log", "--brokers", c.kafka, "--topic", "access-log",
		"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4", "--rate", "15000")

	for kill := 1; kill <= 2; kill++ {
		// Let the job complete a checkpoint under this leader first.
		proc.Eventually(t, 60*time.Second, func() (bool, string) {
			out, code := c.weir(lead, "checkpoints", id, "-o", "json")
			var cs struct {
				Counts struct {
					Completed int `json:"completed"`
				} `json:"counts"`
			}
			_ = json.Unmarshal([]byte(out), &cs)
			return code == 0 && cs.Counts.Completed >= 1, out
		})
		before, why := c.job(lead, id)
		if before.State != "RUNNING" {
			t.Fatalf("job %s %s", before.State, why)
		}
		t.Logf("kill %d: SIGKILL %s (job at attempt %d)", kill, lead.name, before.Attempt)
		start := time.Now()
		lead.p.Kill()
		next := c.leader(60 * time.Second)
		var after jobStatus
		proc.Eventually(t, 60*time.Second, func() (bool, string) {
			after, why = c.job(next, id)
			return after.State == "RUNNING", after.State + why
		})
		// The workers kept the subtasks through the election and reported
		// them to the new leader, which adopted the attempt as it runs.
		if after.Attempt != before.Attempt {
			t.Errorf("kill %d: the new leader runs attempt %d, want the adopted attempt %d", kill, after.Attempt, before.Attempt)
		}
		t.Logf("kill %d: %s leads, job running again after %s", kill, next.name, time.Since(start).Round(100*time.Millisecond))
		// The killed coordinator comes back as a standby.
		c.startCoordinator(lead)
		lead = next
	}
	if code, err := loadgen.Wait(3 * time.Minute); err != nil || code != 0 {
		t.Fatalf("loadgen: exit %d %v", code, err)
	}

	var v accesslog.Report
	var last string
	proc.Eventually(t, 3*time.Minute, func() (bool, string) {
		if j, why := c.job(lead, id); j.State != "RUNNING" {
			t.Fatalf("job %s is %s %s", id, j.State, why)
		}
		out, _ := c.weir(lead, "verify", "ip-visits", "--brokers", c.kafka, "--topic", "ip-visits",
			"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4", "--idle", "500ms", "-o", "json")
		last = out
		v = accesslog.Report{}
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&v); err != nil {
			return false, out
		}
		if v.Duplicated > 0 || v.Wrong > 0 || v.Unexpected > 0 || len(v.Malformed) > 0 {
			t.Fatalf("not exactly once after the leader kills: %s", out)
		}
		return v.OK && v.Lost == 0 && v.Matched > 0, out
	})
	t.Logf("verify after 2 leader kills (exactly-once sink): matched %d, lost %d, duplicated %d, wrong %d, pending %d",
		v.Matched, v.Lost, v.Duplicated, v.Wrong, v.Pending)
	_ = last
}
