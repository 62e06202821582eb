package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/cluster"
)

const joinFailoverJob = `name: join-eos
checkpoint: {interval: 100ms}
restart: {strategy: fixed, attempts: 5, delay: 100ms}
pipeline:
  - name: bids
    parallelism: 2
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: eos-bids}
      schema: {bid: int, auction: int, ts: int}
      event_time: {field: ts, watermark_interval: 50ms}
  - {name: bids-by-auction, parallelism: 2, key_by: auction}
  - name: auctions
    parallelism: 1
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: eos-auctions}
      schema: {id: int, ts: int}
      event_time: {field: ts, watermark_interval: 50ms}
  - {name: auctions-by-id, parallelism: 1, key_by: {expr: id, as: auction}}
  - name: joined
    parallelism: {{par}}
    join: {left: bids-by-auction, right: auctions-by-id, type: left, interval: {lower: 500ms, upper: 1s}, right_prefix: a_}
  - name: out
    parallelism: {{par}}
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: eos-joined, delivery: exactly-once}
`

// joinFailoverModel is the interval left join of everything produced so
// far, as far as the watermark has got: every matching pair, and each
// unmatched bid whose interval the watermark has passed.
type joinFailoverModel struct {
	bids, auctions [][2]int64 // (id or auction, ts); bids: (bid, auction, ts)
	bidRows        [][3]int64
	wm             int64
}

func (m *joinFailoverModel) want() []string {
	var rows []string
	for _, b := range m.bidRows {
		bid := map[string]any{"bid": b[0], "auction": b[1], "ts": b[2]}
		matched := false
		for _, a := range m.auctions {
			if a[0] == b[1] && a[1] >= b[2]-500 && a[1] <= b[2]+1000 {
				matched = true
				rows = append(rows, line(merge(bid, map[string]any{"a_id": a[0], "a_ts": a[1]})))
			}
		}
		if !matched && b[2]+1000 <= m.wm {
			rows = append(rows, line(merge(bid, map[string]any{"a_id": nil, "a_ts": nil})))
		}
	}
	return rows
}

// The interval left join through a worker loss and a rescale from a
// savepoint (2 -> 3 join subtasks, the key groups split): the
// exactly-once sink's committed output is the model's, no row lost or
// doubled, including the unmatched rows that only the restored state's
// timers emit.
func TestJoinExactlyOnceAcrossFailoverAndRescale(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 4, Slots: 3, Kafka: true})
	c.CreateTopic(t, "eos-bids", 2)
	c.CreateTopic(t, "eos-auctions", 1)
	c.CreateTopic(t, "eos-joined", 1)
	m := &joinFailoverModel{}
	bidN, sentinel := int64(0), int64(100000)
	// batch writes bids and auctions over [from, from+n*50), then on every
	// partition a record at the batch's end that matches nothing, so the
	// watermark passes every record of the batch but the last millisecond.
	batch := func(from int64, n int) int64 {
		var bm, am []cluster.Message
		ts := from
		for i := range n {
			auc := (bidN * 7) % 23
			bm = append(bm, cluster.Message{Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"bid": %d, "auction": %d, "ts": %d}`, bidN, auc, ts))})
			m.bidRows = append(m.bidRows, [3]int64{bidN, auc, ts})
			bidN++
			if i%3 == 0 {
				id := int64(i/3) % 20
				am = append(am, cluster.Message{Value: []byte(fmt.Sprintf(`{"id": %d, "ts": %d}`, id, ts+200))})
				m.auctions = append(m.auctions, [2]int64{id, ts + 200})
			}
			ts += 50
		}
		end := ts + 1000
		for p := range int32(2) {
			bm = append(bm, cluster.Message{Partition: p, Value: []byte(fmt.Sprintf(`{"bid": %d, "auction": %d, "ts": %d}`, bidN, sentinel, end))})
			m.bidRows = append(m.bidRows, [3]int64{bidN, sentinel, end})
			bidN++
			sentinel++
		}
		am = append(am, cluster.Message{Value: []byte(fmt.Sprintf(`{"id": %d, "ts": %d}`, sentinel, end))})
		m.auctions = append(m.auctions, [2]int64{sentinel, end})
		sentinel++
		// Auctions first: the records sort after the earlier batch's end.
		c.Produce(t, "eos-auctions", am...)
		c.Produce(t, "eos-bids", bm...)
		m.wm = end - 1
		return end + 1000
	}
	check := func(what string, j func() *api.Job) {
		t.Helper()
		want := m.want()
		var got []string
		cluster.Eventually(t, 60*time.Second, func() bool {
			got = readCommitted(t, c.KafkaAddr(), "eos-joined")
			return len(got) >= len(want)
		}, "%s: %d rows", what, len(want))
		sameLines(t, what+"\n"+cluster.Describe(j()), got, want)
	}
	job := c.Submit(t, spec(joinFailoverJob, "{{par}}", "2"))
	c.WaitState(t, job, "RUNNING", 30*time.Second)
	next := batch(t0, 120)
	check("first run", func() *api.Job { return c.Job(t, job) })

	// A worker of the join dies after checkpoints completed: the join's
	// records and timers come back from the latest.
	c.KillWorkerRunning(t, job, "joined", 3)
	next = batch(next, 120)
	check("after the restore", func() *api.Job { return c.Job(t, job) })

	// Stop with a savepoint, resume with 3 join subtasks.
	loc := c.StopWithSavepoint(t, job)
	job2 := c.SubmitFromSavepoint(t, spec(joinFailoverJob, "{{par}}", "3"), loc)
	batch(next, 120)
	check("after rescaling from the savepoint", func() *api.Job { return c.Job(t, job2) })
}
