package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// TestBrokerDownIsVisible: a job whose broker stops stays RUNNING (its
// sources and sinks retry), but says so at once: REST and weir status show
// its sink unreachable since then with the last error, and the sink, stuck
// flushing its transaction, counts as backpressured while it waits. A
// worker started with --memory-limit reports it with its heap.
func TestBrokerDownIsVisible(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startCluster(t, 1, 2)
	spec := filepath.Join(t.TempDir(), "job.yaml")
	// Checkpoints complete every second, so the broker is likely killed
	// while a transaction commits: the sink commits again until the
	// broker answers, waiting as backpressure, and the job stays RUNNING.
	// (Before, an unknown commit outcome failed the task and restarted
	// the job, which could not deploy without its broker: 1 CI run of 4.)
	if err := os.WriteFile(spec, []byte(`name: broker-down
parallelism: 1
checkpoint: {interval: 1s}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 20000}}
  - name: out
    sink: {kafka: {brokers: ["${KAFKA_BROKERS}"], topic: broker-down-out, delivery: exactly-once}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	id := c.Submit(spec)
	c.WaitRunning(id, 1, 60*time.Second)
	sink := func(j *api.Job) api.Subtask { return j.Vertices[0].Subtasks[0] }
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		s := sink(c.Job(id))
		return len(s.Links) == 1 && s.Links[0].Connected && s.RecordsOut > 0, fmt.Sprintf("sink connected and writing: %+v", s)
	})

	flag := proc.Start(t, c.Dir, c.Bin, "worker-flag", nil,
		append([]string{"worker", "--coordinator", c.GRPCAddr, "--slots", "1", "--id", "worker-flag", "--memory-limit", "1536MiB"}, c.TLSArgs()...)...)
	defer flag.Kill()
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		ws, err := c.API.Workers(c.Ctx())
		if err != nil {
			return false, err.Error()
		}
		for _, w := range ws {
			if w.ID == "worker-flag" {
				return w.MemoryLimitBytes == 1536<<20 && w.MemoryBytes > 0 && w.HeapLiveBytes > 0, fmt.Sprintf("%+v", w)
			}
		}
		return false, "worker-flag not registered"
	})

	before := sink(c.Job(id)).BackpressuredMs
	stopped := time.Now()
	c.Kafka.Kill()
	var j *api.Job
	proc.Eventually(t, 45*time.Second, func() (bool, string) {
		j = c.Job(id)
		s := sink(j)
		ok := j.State == "RUNNING" && j.Restarts == 0 && len(s.Links) == 1 && !s.Links[0].Connected && s.Links[0].UnreachableSince != nil &&
			s.Links[0].LastError != "" && s.BackpressuredMs >= before+3000
		return ok, fmt.Sprintf("want the job RUNNING (never restarted) with its sink unreachable and backpressured 3s more than %d ms: %+v", before, j)
	})
	if since := *sink(j).Links[0].UnreachableSince; since.Before(stopped.Add(-time.Second)) {
		t.Errorf("unreachable since %s, before the broker stopped at %s", since, stopped)
	}
	if len(j.Warnings) == 0 || !strings.Contains(j.Warnings[0], "out (gen[0]) cannot reach kafka "+c.KafkaAddr+" topic broker-down-out since") {
		t.Errorf("warnings %q", j.Warnings)
	}
	out, code := c.Weir("status", id)
	if code != 0 || !strings.Contains(out, "Warning:   out (gen[0]) cannot reach kafka") || !strings.Contains(out, "out UNREACHABLE since") {
		t.Errorf("weir status (exit %d):\n%s", code, out)
	}
	t.Logf("weir status:\n%s", out)
}
