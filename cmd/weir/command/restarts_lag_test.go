package command

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/cluster"
)

// weir restarts shows a restart after a worker is lost, by job name, with
// its cause, the checkpoint restored and the timeline to running; weir lag
// shows the job's Kafka source partitions with offsets from the latest
// checkpoint. Both have -o json with the REST API's document.
func TestRestartsAndLagVerbs(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2, Kafka: true})
	url := "http://" + c.Coordinator().HTTPAddr()
	c.CreateTopic(t, "lag-in", 2)
	var msgs []cluster.Message
	for i := 0; i < 20; i++ {
		msgs = append(msgs, cluster.Message{Partition: int32(i % 2), Value: []byte(`{"n": 1}`)})
	}
	c.Produce(t, "lag-in", msgs...)
	id := c.Submit(t, `name: lagged
parallelism: 2
checkpoint: {interval: 100ms}
restart: {strategy: fixed, attempts: 10, delay: 10ms}
pipeline:
  - name: in
    source: {kafka: {brokers: ["${KAFKA_BROKERS}"], topic: lag-in}}
  - name: out
    sink: {discard: {}}
`)
	c.WaitState(t, id, "RUNNING", time.Minute)
	cl := c.Client()
	ctx := context.Background()
	eventually(t, time.Minute, func() (bool, string) {
		cs, err := cl.Checkpoints(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		return cs.Latest != nil, "no completed checkpoint"
	})

	r := mustRun(t, 0, "lag", "lagged", "--coordinator", url)
	for _, want := range []string{"Positions:  checkpoint ", "Total lag:  ", "SOURCE  TOPIC   PARTITION  SUBTASK  OFFSET  END  LAG", "in      lag-in  0  ", "in      lag-in  1  "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weir lag lacks %q:\n%s", want, r)
		}
	}
	var lag api.KafkaLag
	decode(t, mustRun(t, 0, "lag", id, "--coordinator", url, "-o", "json"), &lag)
	if lag.Basis != "checkpoint" || len(lag.Sources) != 1 || len(lag.Sources[0].Partitions) != 2 {
		t.Errorf("weir lag -o json: %+v", lag)
	}

	r = mustRun(t, 0, "restarts", "lagged", "--coordinator", url)
	if !strings.Contains(r.stdout, "Strategy: ") || !strings.Contains(r.stdout, "Restarts: 0") {
		t.Errorf("weir restarts before any: %s", r)
	}
	c.KillWorker(0)
	eventually(t, time.Minute, func() (bool, string) {
		rs, err := cl.Restarts(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		return len(rs.Restarts) > 0 && rs.Restarts[0].RunningAt != nil, "no restart back to running"
	})
	r = mustRun(t, 0, "restarts", "lagged", "--coordinator", url)
	for _, want := range []string{"Restarts: 1", "attempt 1", "checkpoint ", "cancelled +", "running +", "TIMELINE", " lost: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weir restarts lacks %q:\n%s", want, r)
		}
	}
	var rs api.Restarts
	decode(t, mustRun(t, 0, "restarts", id, "--coordinator", url, "-o", "json"), &rs)
	if len(rs.Restarts) != 1 || rs.Restarts[0].Cause == "" {
		t.Errorf("weir restarts -o json: %+v", rs)
	}
	mustRun(t, 1, "restarts", "no-such-job", "--coordinator", url)
	mustRun(t, 1, "lag", "no-such-job", "--coordinator", url)
}

// savepoint --wait --progress says on stderr which savepoint it waits for;
// stdout is the URI alone.
func TestSavepointWaitProgress(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2})
	url := "http://" + c.Coordinator().HTTPAddr()
	id := c.Submit(t, `name: sp-progress
parallelism: 1
checkpoint: {interval: 1h}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 1000}}
  - name: out
    sink: {discard: {}}
`)
	c.WaitState(t, id, "RUNNING", time.Minute)
	r := mustRun(t, 0, "savepoint", id, "--coordinator", url, "--wait", "--progress")
	if !strings.Contains(r.stderr, "\rsavepoint sp-") || !strings.Contains(r.stderr, " of job "+id+": ") ||
		!strings.HasPrefix(r.stdout, "file://") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("savepoint --wait --progress: %s", r)
	}
	r = mustRun(t, 0, "savepoint", id, "--coordinator", url, "--wait")
	if r.stderr != "" {
		t.Fatalf("savepoint --wait without --progress wrote to stderr: %s", r)
	}
}
