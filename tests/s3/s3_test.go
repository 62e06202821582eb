// Package s3 runs a multi-process weir cluster whose checkpoints go to
// s3:// on an S3 server in the test process (gofakes3 over HTTP on
// 127.0.0.1, reached by the child processes through WEIR_S3_ENDPOINT).
package s3

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint/s3/s3test"
	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

const (
	storage = "s3://" + s3test.Bucket + "/ckpt"
	secret  = "e2e-planted-secret-77d1"
)

type cluster struct {
	*proc.Cluster
	env     []string
	allowed string
}

// startCluster is proc.StartCluster with s3:// checkpoint storage: the
// coordinator's --checkpoint-storage and every process's --allowed-paths
// name the bucket, and every process gets the endpoint and credentials in
// its environment.
func startCluster(t *testing.T, srv *s3test.Server, workers, slots int) *cluster {
	t.Helper()
	c := &cluster{Cluster: &proc.Cluster{
		T: t, Bin: proc.Binary(t), Dir: proc.ArtifactDir(t),
		KafkaAddr: proc.FreeAddr(t), GRPCAddr: proc.FreeAddr(t), HTTPAddr: proc.FreeAddr(t),
		Allowed:      t.TempDir(),
		KafkaDataDir: filepath.Join(t.TempDir(), "kafka"),
		Workers:      map[string]*proc.Process{},
	}}
	c.env = []string{"WEIR_S3_ENDPOINT=" + srv.URL(), "AWS_ACCESS_KEY_ID=weir-e2e",
		"AWS_SECRET_ACCESS_KEY=" + secret, "AWS_REGION=us-east-1"}
	c.allowed = c.Allowed + "," + storage
	c.API = api.NewClient("http://" + c.HTTPAddr)
	c.Kafka = proc.Start(t, c.Dir, c.Bin, "kafka", nil,
		"dev", "kafka", "--addr", c.KafkaAddr, "--data-dir", c.KafkaDataDir)
	c.Coordinator = proc.Start(t, c.Dir, c.Bin, "coordinator", c.env,
		"coordinator", "--grpc-addr", c.GRPCAddr, "--http-addr", c.HTTPAddr,
		"--checkpoint-storage", storage, "--allowed-paths", c.allowed, "--insecure")
	for i := 1; i <= workers; i++ {
		c.startWorker(fmt.Sprintf("worker-%d", i), slots)
	}
	c.WaitWorkers(workers)
	return c
}

func (c *cluster) startWorker(id string, slots int) {
	c.T.Helper()
	c.Workers[id] = proc.Start(c.T, c.Dir, c.Bin, id, c.env,
		"worker", "--coordinator", c.GRPCAddr, "--slots", strconv.Itoa(slots), "--id", id, "--allowed-paths", c.allowed)
}

// ipVisitsEOS writes examples/ip-visits.yaml with an exactly-once sink, a
// checkpoint every second and a quick fixed restart.
func ipVisitsEOS(t *testing.T) string {
	t.Helper()
	base, err := os.ReadFile("../../examples/ip-visits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(base)
	for old, repl := range map[string]string{
		"  interval: ${CHECKPOINT_INTERVAL:-10s}\n": "  interval: 1s\nrestart: {strategy: fixed, attempts: 20, delay: 500ms}\n",
		"        key: ip\n        format: json":     "        key: ip\n        format: json\n        delivery: exactly-once",
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("examples/ip-visits.yaml no longer contains %q", old)
		}
		s = strings.Replace(s, old, repl, 1)
	}
	path := filepath.Join(t.TempDir(), "ip-visits-eos.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func (c *cluster) sinkWorkers(id string) []string {
	seen := map[string]bool{}
	var ws []string
	for _, v := range c.Job(id).Vertices {
		if !slices.Contains(v.Nodes, "ip-visits") {
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

// TestExactlyOnceWithS3Checkpoints runs ip-visits with exactly-once output
// and checkpoints on s3://, SIGKILLs a worker running sink subtasks after a
// checkpoint completed while events stream in, and checks that the job
// restored from the S3 checkpoint and that weir verify (read_committed)
// finds every window exactly once.
func TestExactlyOnceWithS3Checkpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	srv := s3test.New(t)
	const events, seed, rate = 60_000, 33, 10_000
	c := startCluster(t, srv, 2, 2)
	id := c.Submit(ipVisitsEOS(t), "-p", "2")
	c.WaitRunning(id, 1, 60*time.Second)
	lg := proc.Start(t, c.Dir, c.Bin, "loadgen", nil, "loadgen", "access-log", "--brokers", c.KafkaAddr,
		"--topic", "access-log", "--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed),
		"--partitions", "4", "--rate", strconv.Itoa(rate))

	started := time.Now()
	j := c.Job(id)
	first := c.WaitCheckpoint(id, j.Attempt, 0, 90*time.Second).ID
	// Kill in the middle of the stream, after a checkpoint that holds
	// offsets and open transactions.
	proc.Eventually(t, 30*time.Second, func() (bool, string) { return time.Since(started) > 3*time.Second, "3s of events" })
	chk := c.WaitCheckpoint(id, j.Attempt, first, 90*time.Second).ID
	meta := fmt.Sprintf("ckpt/%s/chk-%d/_metadata", id, chk)
	if keys := srv.Keys(t); !slices.Contains(keys, meta) {
		t.Fatalf("checkpoint %d completed but %s is not in the bucket: %v", chk, meta, keys)
	}
	ws := c.sinkWorkers(id)
	if len(ws) == 0 {
		t.Fatal("no worker runs the sink")
	}
	t.Logf("SIGKILL %s in attempt %d (checkpoint %d completed on s3)", ws[0], j.Attempt, chk)
	reads := srv.Calls()["GetObject"]
	c.Workers[ws[0]].Kill()
	c.startWorker("worker-3", 2)
	after := c.WaitRunning(id, j.Attempt+1, 90*time.Second)
	c.WaitCheckpoint(id, after.Attempt, 0, 90*time.Second)
	if code, err := lg.Wait(3 * time.Minute); err != nil || code != 0 {
		t.Fatalf("loadgen: exit %d, %v (log %s)", code, err, lg.LogPath)
	}

	var r accesslog.Report
	proc.Eventually(t, 3*time.Minute, func() (bool, string) {
		out, code := c.Weir("verify", "ip-visits", "--brokers", c.KafkaAddr, "--topic", "ip-visits",
			"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4",
			"--idle", "500ms", "-o", "json", "--allow-duplicates")
		r = accesslog.Report{}
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&r); err != nil {
			t.Fatalf("weir verify: exit %d, not JSON: %v\n%s", code, err, out)
		}
		if r.Duplicated > 0 || len(r.Malformed) > 0 {
			t.Fatalf("weir verify: %s", r)
		}
		return r.Lost == 0, r.String()
	})
	t.Logf("verify (read_committed): %s", r)
	if r.Lost > 0 || r.Duplicated > 0 || len(r.Malformed) > 0 || r.Wrong > 0 || r.Unexpected > 0 {
		t.Fatalf("verify: %s", r)
	}
	if j := c.Job(id); j.State != "RUNNING" || j.Restarts != 1 {
		t.Fatalf("job after the kill: %s, %d restarts, failure %q", j.State, j.Restarts, j.FailureCause)
	}
	// The restart read the checkpoint back from the bucket.
	if n := srv.Calls()["GetObject"]; n <= reads {
		t.Fatal("no object was read from the bucket: the job did not restore from s3")
	}
	// Nothing leaks the secret key into the logs.
	for _, name := range []string{"coordinator", "worker-1", "worker-2", "worker-3"} {
		b, err := os.ReadFile(filepath.Join(c.Dir, name+".log"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), secret) {
			t.Fatalf("%s.log shows the secret key", name)
		}
	}
}
