package cluster_test

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// The harness starts real workers that exchange data, ends jobs, kills a
// worker (the coordinator fails its job) and terminates idempotently.
func TestCluster(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2, Kafka: true})
	if c.KafkaAddr() == "" {
		t.Fatal("no broker address")
	}
	id := c.Submit(t, `name: smoke
parallelism: 2
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: 500}}
  - name: sink
    parallelism: 1
    sink: {discard: {}}
`)
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	var in int64
	workers := map[string]bool{}
	for _, v := range j.Vertices {
		for _, s := range v.Subtasks {
			workers[s.Worker] = true
			if v.ID == "sink" {
				in += s.RecordsIn
			}
		}
	}
	if in != 500 || len(workers) != 2 {
		t.Fatalf("sink read %d records on workers %v\n%s", in, workers, cluster.Describe(j))
	}

	// An unbounded job on both workers that may not restart fails when one
	// of them dies.
	id = c.Submit(t, `name: forever
parallelism: 2
restart: {strategy: none}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 100}}
  - name: sink
    sink: {discard: {}}
`)
	c.WaitState(t, id, "RUNNING", 10*time.Second)
	c.KillWorker(1)
	c.KillWorker(1)
	j = c.WaitState(t, id, "FAILED", 20*time.Second)
	if !strings.Contains(j.FailureCause, "worker w2 lost") {
		t.Fatalf("cause %q", j.FailureCause)
	}

	c.CreateTopic(t, "t", 2)
	c.Produce(t, "t", cluster.Message{Partition: 1, Value: []byte("x"), Headers: map[string]string{"h": "v"}})
	got := c.ReadTopic(t, "t")
	if len(got) != 1 || got[0].Partition != 1 || string(got[0].Value) != "x" || got[0].Headers["h"] != "v" {
		t.Fatalf("read back %+v", got)
	}
	c.Terminate()
	c.Terminate()
}
