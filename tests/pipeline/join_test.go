package pipeline

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// An interval left join of bids (2 partitions, 2 subtasks) with auctions
// (1 partition, 1 subtask) read from Kafka, at parallelism 2, written to
// Kafka: every bid with each auction of its id within [bid.ts - 1s,
// bid.ts + 2s], or alone with the auction's fields null. The input is
// unbounded, so the join's state holds the records the watermark has not
// passed; a record far in the future on every partition moves the
// watermark past them, after which every row is out and the state, as the
// workers report it (weir_operator_state_bytes), is back to near zero.
func TestKafkaIntervalLeftJoin(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 3, Kafka: true})
	c.CreateTopic(t, "bids", 2)
	c.CreateTopic(t, "auctions", 1)
	type auction struct{ id, ts int64 }
	var auctions []auction
	var amsgs, bmsgs []cluster.Message
	for id := int64(0); id < 30; id++ {
		a := auction{id, t0 + id*100}
		auctions = append(auctions, a)
		amsgs = append(amsgs, cluster.Message{Value: []byte(fmt.Sprintf(`{"id": %d, "seller": "s%d", "ts": %d}`, a.id, a.id%4, a.ts))})
	}
	var want []string
	for i := int64(0); i < 300; i++ {
		ts, auc := t0+i*20, (i*7)%40 // auctions 30-39 do not exist
		bmsgs = append(bmsgs, cluster.Message{Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"bid": %d, "auction": %d, "price": %d, "ts": %d}`, i, auc, i%13, ts))})
		bid := map[string]any{"bid": i, "auction": auc, "price": i % 13, "ts": ts}
		matched := false
		for _, a := range auctions {
			if a.id == auc && a.ts >= ts-1000 && a.ts <= ts+2000 {
				matched = true
				want = append(want, line(merge(bid, map[string]any{"a_id": a.id, "a_seller": fmt.Sprintf("s%d", a.id%4), "a_ts": a.ts})))
			}
		}
		if !matched {
			want = append(want, line(merge(bid, map[string]any{"a_id": nil, "a_seller": nil, "a_ts": nil})))
		}
	}
	c.Produce(t, "auctions", amsgs...)
	c.Produce(t, "bids", bmsgs...)
	id := c.Submit(t, `name: bids-auctions
parallelism: 2
pipeline:
  - name: bids
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: bids}
      schema: {bid: int, auction: int, price: int, ts: int}
      event_time: {field: ts, watermark_interval: 50ms}
  - {name: bids-by-auction, key_by: auction}
  - name: auctions
    parallelism: 1
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: auctions}
      schema: {id: int, seller: string, ts: int}
      event_time: {field: ts, watermark_interval: 50ms}
  - {name: auctions-by-id, parallelism: 1, key_by: {expr: id, as: auction}}
  - name: joined
    join:
      left: bids-by-auction
      right: auctions-by-id
      type: left
      interval: {lower: 1s, upper: 2s}
      right_prefix: a_
  - name: out
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: bids-with-auctions, key: "string(bid)"}
`)
	c.WaitState(t, id, "RUNNING", 30*time.Second)
	stateBytes := func() int64 {
		var n int64
		for _, v := range c.Job(t, id).Vertices {
			for _, s := range v.Subtasks {
				n += s.StateBytes["joined"]
			}
		}
		return n
	}
	// The watermark trails the last records: the join holds them.
	cluster.Eventually(t, 30*time.Second, func() bool { return stateBytes() > 4096 }, "the join holding the records the watermark has not passed")
	held := stateBytes()
	far := t0 + 3_600_000
	c.Produce(t, "bids",
		cluster.Message{Partition: 0, Value: []byte(fmt.Sprintf(`{"bid": -1, "auction": 999, "price": 0, "ts": %d}`, far))},
		cluster.Message{Partition: 1, Value: []byte(fmt.Sprintf(`{"bid": -2, "auction": 999, "price": 0, "ts": %d}`, far))})
	c.Produce(t, "auctions", cluster.Message{Value: []byte(fmt.Sprintf(`{"id": 998, "seller": "x", "ts": %d}`, far))})
	var got []string
	cluster.Eventually(t, 30*time.Second, func() bool {
		got = got[:0]
		for _, m := range c.ReadTopic(t, "bids-with-auctions") {
			got = append(got, canonical(string(m.Value)))
		}
		return len(got) >= len(want)
	}, "%d joined rows", len(want))
	sameLines(t, "bids with auctions", got, want)
	// Only the three far records are left.
	cluster.Eventually(t, 30*time.Second, func() bool { return stateBytes() < 1024 }, "the join's state back near zero (it held %d bytes)", held)
	t.Logf("join state: %d bytes held, %d after the watermark passed", held, stateBytes())
	c.Cancel(t, id)
}

// readCommittedN reads topic with read_committed until it has n records
// (a first poll may come back empty while the consumer connects), or what
// it has after a backstop timeout.
func readCommittedN(t *testing.T, c *cluster.Cluster, topic string, n int) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = readCommitted(t, c.KafkaAddr(), topic)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// A tumbling-window inner join of clicks and views per user over bounded
// Kafka input, with checkpoints and an exactly-once sink: every pair of a
// click and a view of one user in one 1s window, once (the user field,
// the key of both sides, once).
func TestKafkaWindowJoinBounded(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4, Kafka: true})
	c.CreateTopic(t, "clicks", 2)
	c.CreateTopic(t, "views", 2)
	users := []string{"ann", "bob", "cid", "dan"}
	type ev struct {
		user string
		n    int64
		ts   int64
	}
	var clicks, views []ev
	var cm, vm []cluster.Message
	for i := int64(0); i < 120; i++ {
		e := ev{users[i%4], i, t0 + i*45}
		clicks = append(clicks, e)
		cm = append(cm, cluster.Message{Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"user": %q, "click": %d, "ts": %d}`, e.user, e.n, e.ts))})
	}
	for i := int64(0); i < 80; i++ {
		e := ev{users[(i*3)%4], i, t0 + i*70}
		views = append(views, e)
		vm = append(vm, cluster.Message{Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"user": %q, "view": %d, "ts": %d}`, e.user, e.n, e.ts))})
	}
	var want []string
	for _, cl := range clicks {
		for _, v := range views {
			if cl.user == v.user && cl.ts/1000 == v.ts/1000 {
				start := cl.ts - cl.ts%1000
				want = append(want, line(map[string]any{"user": cl.user, "click": cl.n, "ts": cl.ts, "v_view": v.n, "v_ts": v.ts,
					"window_start": start, "window_end": start + 1000}))
			}
		}
	}
	c.Produce(t, "clicks", cm...)
	c.Produce(t, "views", vm...)
	id := c.Submit(t, `name: clicks-views
parallelism: 2
checkpoint: {interval: 100ms}
pipeline:
  - name: clicks
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: clicks, bounded: true}
      schema: {user: string, click: int, ts: int}
      event_time: {field: ts}
  - {name: clicks-by-user, key_by: user}
  - name: views
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: views, bounded: true}
      schema: {user: string, view: int, ts: int}
      event_time: {field: ts}
  - {name: views-by-user, key_by: user}
  - name: joined
    parallelism: 3
    join: {left: clicks-by-user, right: views-by-user, window: {tumbling: 1s}, right_prefix: v_}
  - name: out
    parallelism: 3
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: clicks-views, delivery: exactly-once}
`)
	j := c.WaitState(t, id, "FINISHED", 60*time.Second)
	sameLines(t, "clicks with views\n"+cluster.Describe(j), readCommittedN(t, c, "clicks-views", len(want)), want)
}

// A session-window left join of clicks and views per user over bounded
// Kafka input (a user's records of both sides less than 100ms apart are
// one session), through an exactly-once sink, at parallelism 3.
func TestKafkaSessionJoinBounded(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4, Kafka: true})
	c.CreateTopic(t, "s-clicks", 2)
	c.CreateTopic(t, "s-views", 2)
	type ev struct {
		user   string
		n, ts  int64
		isView bool
	}
	var evs []ev
	var cm, vm []cluster.Message
	for i := int64(0); i < 150; i++ {
		// Bursts: 10 records 30ms apart, then a pause of 400ms.
		e := ev{user: []string{"ann", "bob", "cid"}[i%3], n: i, ts: t0 + (i/10)*700 + (i%10)*30}
		evs = append(evs, e)
		cm = append(cm, cluster.Message{Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"user": %q, "click": %d, "ts": %d}`, e.user, e.n, e.ts))})
	}
	for i := int64(0); i < 40; i++ {
		e := ev{user: []string{"ann", "bob", "cid", "dan"}[i%4], n: i, ts: t0 + i*260, isView: true}
		evs = append(evs, e)
		vm = append(vm, cluster.Message{Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"user": %q, "view": %d, "ts": %d}`, e.user, e.n, e.ts))})
	}
	// The model: per user, sort by time and cut where neighbours are 100ms
	// or more apart.
	byUser := map[string][]ev{}
	for _, e := range evs {
		byUser[e.user] = append(byUser[e.user], e)
	}
	var want []string
	for _, es := range byUser {
		slices.SortFunc(es, func(a, b ev) int { return int(a.ts - b.ts) })
		for i := 0; i < len(es); {
			j := i + 1
			for j < len(es) && es[j].ts-es[j-1].ts < 100 {
				j++
			}
			var cs, vs []ev
			for _, e := range es[i:j] {
				if e.isView {
					vs = append(vs, e)
				} else {
					cs = append(cs, e)
				}
			}
			start, end := es[i].ts, es[j-1].ts+100
			for _, cl := range cs {
				for _, v := range vs {
					want = append(want, line(map[string]any{"user": cl.user, "click": cl.n, "ts": cl.ts, "v_view": v.n, "v_ts": v.ts,
						"window_start": start, "window_end": end}))
				}
				if len(vs) == 0 {
					want = append(want, line(map[string]any{"user": cl.user, "click": cl.n, "ts": cl.ts, "v_view": nil, "v_ts": nil,
						"window_start": start, "window_end": end}))
				}
			}
			i = j
		}
	}
	c.Produce(t, "s-clicks", cm...)
	c.Produce(t, "s-views", vm...)
	id := c.Submit(t, `name: clicks-views-sessions
parallelism: 2
checkpoint: {interval: 100ms}
pipeline:
  - name: clicks
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: s-clicks, bounded: true}
      schema: {user: string, click: int, ts: int}
      event_time: {field: ts}
  - {name: clicks-by-user, key_by: user}
  - name: views
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: s-views, bounded: true}
      schema: {user: string, view: int, ts: int}
      event_time: {field: ts}
  - {name: views-by-user, key_by: user}
  - name: joined
    parallelism: 3
    join: {left: clicks-by-user, right: views-by-user, type: left, window: {session: {gap: 100ms}}, right_prefix: v_}
  - name: out
    parallelism: 3
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: s-clicks-views, delivery: exactly-once}
`)
	j := c.WaitState(t, id, "FINISHED", 60*time.Second)
	sameLines(t, "click sessions with views\n"+cluster.Describe(j), readCommittedN(t, c, "s-clicks-views", len(want)), want)
}
