package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/internal/cluster"
)

// A bounded read_committed source over a partition holding a committed
// transaction, an aborted one and a committed one again, then an aborted
// one at the very end (so the end offset sits after records it must never
// emit), and a transaction left open: exactly the committed records come
// out, and the job finishes.
func TestKafkaTransactionsBounded(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2, Kafka: true})
	c.CreateTopic(t, "txn", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddr()), kgo.TransactionalID("test-txn"),
		kgo.DefaultProduceTopic("txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var want []string
	n := 0
	for i, commit := range []bool{true, false, true, false} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			v := fmt.Sprintf("batch%d-%d", i, n)
			n++
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if commit {
				want = append(want, v)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	// A transaction still open when the job starts: beyond the end of a
	// read_committed bounded read.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(fmt.Sprintf("open-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	defer cl.EndTransaction(ctx, kgo.TryAbort)
	out := t.TempDir() + "/out"
	id := c.Submit(t, spec(`name: txn
pipeline:
  - name: src
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: txn, format: raw, bounded: true}
  - name: sink
    sink: {file: {path: {{out}}, format: raw}}
`, "{{out}}", out))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
	equalLines(t, "committed records\n"+cluster.Describe(j), readLines(t, out), want)
}
