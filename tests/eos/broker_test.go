package eos

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// outputRecords is the sum of the end offsets of topic's partitions (0
// while the topic does not exist).
func (c *cluster) outputRecords(topic string) int64 {
	c.T.Helper()
	sc := sarama.NewConfig()
	sc.Metadata.AllowAutoTopicCreation = false
	cl, err := sarama.NewClient([]string{c.KafkaAddr}, sc)
	if err != nil {
		return 0
	}
	defer cl.Close()
	parts, err := cl.Partitions(topic)
	if err != nil {
		return 0
	}
	var n int64
	for _, p := range parts {
		off, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0
		}
		n += off
	}
	return n
}

// lastCompleted is the job's newest completed checkpoint (ID 0: none).
func (c *cluster) lastCompleted(id string) api.CheckpointStats {
	c.T.Helper()
	var last api.CheckpointStats
	for _, h := range c.Checkpoints(id).History {
		if h.Status == "COMPLETED" && h.ID > last.ID {
			last = h
		}
	}
	return last
}

// onlyNewestTxnsOpen reports whether the broker has no transaction open
// (Ongoing) under a transactional id weir-<job>-<node>-<subtask>-<k> but
// the newest id of each sink subtask: the sink begins transaction k+1 only
// after pre-committing k, so every older one is committed or pending, and
// pending ones are Ongoing.
func (c *cluster) onlyNewestTxnsOpen() (bool, string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddr))
	if err != nil {
		return false, err.Error()
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrListTransactionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return false, fmt.Sprintf("list transactions: %v", err)
	}
	type txn struct {
		seq     int64
		ongoing bool
	}
	bySubtask := map[string][]txn{}
	for _, ts := range resp.TransactionStates {
		i := strings.LastIndexByte(ts.TransactionalID, '-')
		seq, err := strconv.ParseInt(ts.TransactionalID[i+1:], 10, 64)
		if i < 0 || err != nil || !strings.HasPrefix(ts.TransactionalID, "weir-") {
			continue
		}
		base := ts.TransactionalID[:i]
		bySubtask[base] = append(bySubtask[base], txn{seq, ts.TransactionState == "Ongoing"})
	}
	if len(bySubtask) == 0 {
		return false, "no transactional ids of the sink on the broker"
	}
	for base, txns := range bySubtask {
		newest := slices.MaxFunc(txns, func(a, b txn) int { return cmp.Compare(a.seq, b.seq) }).seq
		for _, t := range txns {
			if t.ongoing && t.seq != newest {
				return false, fmt.Sprintf("transaction %s-%d is open (a checkpoint's commit is pending), newest %d", base, t.seq, newest)
			}
		}
	}
	return true, ""
}

// TestExactlyOnceSurvivesBrokerKill runs ip-visits with an exactly-once
// sink whose output topic the sink auto-creates, SIGKILLs the broker (weir
// dev kafka with a data directory) while the job works through its input,
// and starts it again on the same directory. The job goes on, and weir
// verify (read_committed) finds every window exactly once, twice in a row.
// Before the broker persisted auto-created topics, the restarted broker had
// forgotten the output topic: 27,378 of about 44,800 windows were lost and
// a second verify failed with "invalid array length". Before the broker
// wrote abort markers for the transactions a crash left open, the restored
// sink's first transactions (which reuse the ids it aborts) were invisible
// to read_committed readers: 3,569 windows lost, seen under load.
//
// The kill falls between two checkpoints, once the broker shows that no
// transaction of the sink is open but each subtask's newest, that is once
// the earlier checkpoint's transactions are committed: kfake aborts the
// transactions open at a crash, so a kill between a checkpoint's completion
// and its commit fails the job (docs/exactly-once.md), which is not what
// this test is about.
func TestExactlyOnceSurvivesBrokerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	events, seed := envInt(t, "WEIR_EOS_EVENTS", 300_000), 23
	const interval = 2 * time.Second
	c := startCluster(t, proc.Binary(t), 2, 4)
	// The whole input first: the broker's kill must not fail loadgen.
	if code := waitExit(t, c.loadgen(events, seed, 0), 3*time.Minute); code != 0 {
		t.Fatalf("loadgen: exit %d", code)
	}
	id := c.Submit(c.ipVisitsEOSEvery(interval.String()), "-p", "4")
	c.WaitRunning(id, 1, 60*time.Second)
	proc.Eventually(t, 90*time.Second, func() (bool, string) {
		n := c.outputRecords("ip-visits")
		return n > 0, fmt.Sprintf("%d records on ip-visits", n)
	})
	chk := c.WaitCheckpoint(id, 1, 0, 90*time.Second)
	chk = c.WaitCheckpoint(id, 1, chk.ID, 90*time.Second)
	// A quarter interval on, commits of chk are long done unless the
	// machine is very busy; the broker's transactions tell for sure. A
	// later checkpoint completing meanwhile starts the wait again.
	at := time.Now().Add(interval / 4)
	proc.Eventually(t, 2*time.Minute, func() (bool, string) {
		if last := c.lastCompleted(id); last.ID != chk.ID {
			chk, at = last, time.Now().Add(interval/4)
			return false, fmt.Sprintf("checkpoint %d completed meanwhile", last.ID)
		}
		if time.Now().Before(at) {
			return false, "kill time"
		}
		ok, msg := c.onlyNewestTxnsOpen()
		return ok && c.lastCompleted(id).ID == chk.ID, msg
	})
	before := c.outputRecords("ip-visits")
	t.Logf("SIGKILL the broker after checkpoint %d, %d records on ip-visits", chk.ID, before)
	c.KillKafka("kafka-2")
	// The job goes on, in the same attempt when its clients' retries
	// outlast the broker's absence, else after a restart: either way
	// checkpoints complete again, taken after the broker came back.
	proc.Eventually(t, 2*time.Minute, func() (bool, string) {
		j := c.Job(id)
		if j.State == "FAILED" {
			t.Fatalf("job failed: %s", j.FailureCause)
		}
		done := 0
		for _, h := range c.Checkpoints(id).History {
			if h.Status == "COMPLETED" && h.ID > chk.ID+1 {
				done++
			}
		}
		return j.State == "RUNNING" && done >= 2, fmt.Sprintf("job %s attempt %d, %d checkpoints completed after the kill", j.State, j.Attempt, done)
	})
	if after := c.outputRecords("ip-visits"); after < before {
		t.Fatalf("ip-visits has %d records after the restart, %d before", after, before)
	}
	r := c.verifyCaughtUp(events, seed, 3*time.Minute)
	t.Logf("verify (read_committed): %s", r)
	checkExactlyOnce(t, r)
	r = c.verifyCaughtUp(events, seed, time.Minute)
	checkExactlyOnce(t, r)
	if j := c.Job(id); j.State != "RUNNING" {
		t.Fatalf("job after the broker's kill: %s, failure %q", j.State, j.FailureCause)
	}
}
