package eos

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	inproc "github.com/weir-stream/weir/internal/cluster"
)

func TestMain(m *testing.M) { inproc.Main(m) }

// TestExactlyOnceInProcess runs datagen sequence -> Kafka sink with
// delivery exactly-once at parallelism 2 on an in-process cluster under the
// race detector, kills the worker of subtask 0 after a checkpoint completed
// (its tasks stop mid-stream, leaving an open and possibly a pre-committed
// transaction), lets the job restore, then stops it with a savepoint (whose
// completion commits the last transactions). A read_committed reader finds
// every id each subtask emitted exactly once, without a gap.
func TestExactlyOnceInProcess(t *testing.T) {
	c := inproc.New(t, inproc.Config{Workers: 2, Slots: 2, Kafka: true, HeartbeatTimeout: 10 * time.Second})
	c.CreateTopic(t, "seq", 4)
	id := c.Submit(t, `
name: eos-seq
parallelism: 2
checkpoint: {interval: 200ms}
restart: {strategy: fixed, attempts: 5, delay: 100ms}
pipeline:
  - source: {datagen: {profile: sequence, rate: 10000}}
  - name: out
    sink: {kafka: {brokers: ["${KAFKA_BROKERS}"], topic: seq, key: "string(id)", delivery: exactly-once}}
`)
	c.WaitState(t, id, "RUNNING", 30*time.Second)
	waitCheckpoint(t, c, id, 1, 3)
	victim := -1
	for _, v := range c.Job(t, id).Vertices {
		for _, s := range v.Subtasks {
			for i := range 2 {
				if s.Index == 0 && s.Worker == c.Worker(i).ID() {
					victim = i
				}
			}
		}
	}
	if victim < 0 {
		t.Fatal("subtask 0 is placed on no worker")
	}
	c.KillWorker(victim)
	c.AddWorker(t)
	inproc.Eventually(t, time.Minute, func() bool {
		j := c.Job(t, id)
		return j.State == "RUNNING" && j.Attempt >= 2
	}, "job %s running again after the kill", id)
	waitCheckpoint(t, c, id, c.Job(t, id).Attempt, 5)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Client().TriggerSavepoint(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	j := c.WaitState(t, id, "FINISHED", time.Minute)
	if j.Restarts < 1 {
		t.Fatalf("no restart after the kill: %s", inproc.Describe(j))
	}

	seen := readCommittedIDs(t, c.KafkaAddr(), "seq", 4)
	top := [2]int64{-1, -1}
	for i := range seen {
		top[i%2] = max(top[i%2], i)
	}
	var dup, gaps []int64
	for sub := range int64(2) {
		for i := sub; i <= top[sub]; i += 2 {
			switch seen[i] {
			case 0:
				gaps = append(gaps, i)
			case 1:
			default:
				dup = append(dup, i)
			}
		}
	}
	if len(dup) > 0 || len(gaps) > 0 || top[0] < 0 || top[1] < 0 {
		t.Fatalf("read_committed: %d ids (highest per subtask %v): %d duplicated %.20v, %d missing %.20v", len(seen), top, len(dup), dup, len(gaps), gaps)
	}
	t.Logf("%d ids exactly once and without a gap, after %d restart(s)", len(seen), j.Restarts)
}

// waitCheckpoint waits until n checkpoints of the attempt have completed.
func waitCheckpoint(t *testing.T, c *inproc.Cluster, id string, attempt int64, n int) {
	t.Helper()
	inproc.Eventually(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cs, err := c.Client().Checkpoints(ctx, id)
		if err != nil {
			return false
		}
		done := 0
		for _, h := range cs.History {
			if h.Status == "COMPLETED" && h.Attempt == attempt {
				done++
			}
		}
		return done >= n
	}, "%d completed checkpoints in attempt %d", n, attempt)
}

// readCommittedIDs reads a finished job's output topic under read_committed
// and counts each record's id. End markers written after the job finished
// tell the reader it has seen everything.
func readCommittedIDs(t *testing.T, addr, topic string, partitions int32) map[int64]int {
	t.Helper()
	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for part := range partitions {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: part, Value: []byte("END")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[int64]int{}
	ends := map[int32]bool{}
	for len(ends) < int(partitions) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: end markers of %d of %d partitions seen", topic, len(ends), partitions)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "END" {
				ends[r.Partition] = true
				return
			}
			var rec struct {
				ID *int64 `json:"id"`
			}
			if err := json.Unmarshal(r.Value, &rec); err != nil || rec.ID == nil {
				t.Fatalf("record %q at %s/%d@%d: not a sequence record", r.Value, r.Topic, r.Partition, r.Offset)
			}
			seen[*rec.ID]++
		})
	}
	return seen
}
