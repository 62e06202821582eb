package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

const lookupJob = `name: orders-users
checkpoint: {interval: 100ms}
restart: {strategy: fixed, attempts: 5, delay: 100ms}
pipeline:
  - name: users
    parallelism: 1
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: users, upsert: true, key_field: user}
      schema: {name: string}  # an unmatched order gets u_name null
  - {name: users-by-id, parallelism: 1, key_by: user}
  - name: orders
    parallelism: 2
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: orders}
  - {name: orders-by-user, parallelism: 2, key_by: user}
  - name: enriched
    parallelism: 2
    join: {left: orders-by-user, right: users-by-id, type: left, lookup: {}, right_prefix: u_}
  - name: out
    parallelism: 2
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: enriched, delivery: exactly-once}
`

// A lookup join of orders against a table from a changelog topic read as
// upsert (the message key is the user, a null value deletes it), through
// an exactly-once sink: each order gets its user's latest row, or nulls
// when there is none or it was deleted. Then the worker running the table's
// source dies: the restored job has the table from the checkpoint and
// reads none of the topic again (its source's records_in stays 0), and
// orders after the restore still find their users.
func TestKafkaLookupJoinTable(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 3, Slots: 3, Kafka: true})
	c.CreateTopic(t, "users", 1)
	c.CreateTopic(t, "orders", 2)
	c.CreateTopic(t, "enriched", 1)
	table := map[string]string{}
	var um []cluster.Message
	put := func(user, name string) {
		um = append(um, cluster.Message{Key: []byte(user), Value: []byte(fmt.Sprintf(`{"name": %q}`, name))})
		table[user] = name
	}
	for i := range 10 {
		put(fmt.Sprintf("u%d", i), fmt.Sprintf("user %d", i))
	}
	put("u1", "renamed")
	um = append(um, cluster.Message{Key: []byte("u2")}) // a tombstone
	delete(table, "u2")
	c.Produce(t, "users", um...)

	job := c.Submit(t, lookupJob)
	c.WaitState(t, job, "RUNNING", 30*time.Second)
	ctx := context.Background()
	cl := c.Client()
	recordsIn := func(vertex string) int64 {
		var n int64
		for _, v := range c.Job(t, job).Vertices {
			if v.ID == vertex {
				for _, s := range v.Subtasks {
					n += s.RecordsIn
				}
			}
		}
		return n
	}
	cluster.Eventually(t, 30*time.Second, func() bool { return recordsIn("users") == int64(len(um)) }, "the table read")

	var want []string
	orderN := 0
	orders := func(n int) {
		var om []cluster.Message
		for range n {
			user := fmt.Sprintf("u%d", orderN%12) // u10 and u11 do not exist
			om = append(om, cluster.Message{Partition: int32(orderN % 2), Value: []byte(fmt.Sprintf(`{"order": %d, "user": %q}`, orderN, user))})
			row := map[string]any{"order": orderN, "user": user, "u_name": nil}
			if name, ok := table[user]; ok {
				row["u_name"] = name
			}
			want = append(want, line(row))
			orderN++
		}
		c.Produce(t, "orders", om...)
	}
	check := func(what string) {
		t.Helper()
		var got []string
		cluster.Eventually(t, 60*time.Second, func() bool {
			got = readCommitted(t, c.KafkaAddr(), "enriched")
			return len(got) >= len(want)
		}, "%s: %d rows", what, len(want))
		sameLines(t, what+"\n"+cluster.Describe(c.Job(t, job)), got, want)
	}
	orders(60)
	check("first run")

	// Checkpoints after the table was read; then the table's worker dies.
	cs, err := cl.Checkpoints(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	done := cs.Counts.Completed
	cluster.Eventually(t, 30*time.Second, func() bool {
		cs, err := cl.Checkpoints(ctx, job)
		return err == nil && cs.Counts.Completed >= done+2
	}, "checkpoints after the table was read")
	subs, err := cl.Subtasks(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for _, st := range subs.Subtasks {
		for i := range 3 {
			if st.Vertex == "users" && st.Worker == c.Worker(i).ID() {
				victim = i
			}
		}
	}
	if victim < 0 {
		t.Fatalf("no worker runs the table's source: %+v", subs.Subtasks)
	}
	c.KillWorker(victim)
	cluster.Eventually(t, 60*time.Second, func() bool {
		j := c.Job(t, job)
		return j.State == "RUNNING" && j.Attempt >= 2
	}, "the job running again after the worker loss")
	orders(60)
	check("after the restore")
	if n := recordsIn("users"); n != 0 {
		t.Fatalf("the restored table's source read %d records again, want 0\n%s", n, cluster.Describe(c.Job(t, job)))
	}
}
