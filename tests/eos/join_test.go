package eos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/connectors/kafka"
	"github.com/weir-stream/weir/internal/proc"
)

const sessionJoinSpec = `name: session-join-eos
parallelism: 2
checkpoint: {interval: 300ms}
restart: {strategy: fixed, attempts: 20, delay: 500ms}
pipeline:
  - name: clicks
    source:
      kafka: {brokers: [%[1]q], topic: sj-clicks}
      schema: {user: string, click: int, ts: int}
      event_time: {field: ts}
  - {name: clicks-by-user, key_by: user}
  - name: views
    source:
      kafka: {brokers: [%[1]q], topic: sj-views}
      schema: {user: string, view: int, ts: int}
      event_time: {field: ts}
  - {name: views-by-user, key_by: user}
  - name: joined
    parallelism: 3
    join: {left: clicks-by-user, right: views-by-user, type: left, window: {session: {gap: 600ms}}, right_prefix: v_}
  - name: out
    parallelism: 3
    sink:
      kafka: {brokers: [%[1]q], topic: sj-out, delivery: exactly-once}
`

type sjEvent struct {
	user   string
	n, ts  int64
	isView bool
}

// sessionJoinModel is the session-window left join by its definition: per
// user, the clicks and views sorted by time and cut where neighbours are
// 600ms or more apart; per session every click with every view, or alone
// with the view fields null.
func sessionJoinModel(evs []sjEvent) []string {
	byUser := map[string][]sjEvent{}
	for _, e := range evs {
		byUser[e.user] = append(byUser[e.user], e)
	}
	var rows []string
	row := func(c sjEvent, v *sjEvent, start, end int64) string {
		m := map[string]any{"user": c.user, "click": c.n, "ts": c.ts, "v_view": nil, "v_ts": nil, "window_start": start, "window_end": end}
		if v != nil {
			m["v_view"], m["v_ts"] = v.n, v.ts
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, es := range byUser {
		slices.SortFunc(es, func(a, b sjEvent) int { return int(a.ts - b.ts) })
		for i := 0; i < len(es); {
			j := i + 1
			for j < len(es) && es[j].ts-es[j-1].ts < 600 {
				j++
			}
			var cs, vs []sjEvent
			for _, e := range es[i:j] {
				if e.isView {
					vs = append(vs, e)
				} else {
					cs = append(cs, e)
				}
			}
			start, end := es[i].ts, es[j-1].ts+600
			for _, c := range cs {
				for k := range vs {
					rows = append(rows, row(c, &vs[k], start, end))
				}
				if len(vs) == 0 {
					rows = append(rows, row(c, nil, start, end))
				}
			}
			i = j
		}
	}
	return rows
}

// TestSessionJoinExactlyOnceSurvivesWorkerKills runs a session-window left
// join of two Kafka topics with an exactly-once sink on three weir worker
// processes and SIGKILLs the worker of a join subtask twice while batches
// stream in, each time after the attempt completed a checkpoint. What the
// sink committed (read_committed) equals the model's rows: 0 lost, 0
// duplicated.
func TestSessionJoinExactlyOnceSurvivesWorkerKills(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t, proc.Binary(t), 3, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, tp := range []string{"sj-clicks", "sj-views", "sj-out"} {
		if err := kafka.EnsureTopic(ctx, []string{c.KafkaAddr}, tp, 2); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var evs []sjEvent
	const t0 = int64(1_767_225_600_000)
	produce := func(rs []*kgo.Record) {
		t.Helper()
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// batch b: 600 clicks of 50 users 10ms apart (a user's clicks 500ms
	// apart, one session per user and batch), a view after every third.
	batch := func(b int64) {
		var rs []*kgo.Record
		base := t0 + b*100_000
		for i := int64(0); i < 600; i++ {
			n := b*1000 + i
			e := sjEvent{user: fmt.Sprintf("u%02d", i%50), n: n, ts: base + i*10}
			evs = append(evs, e)
			rs = append(rs, &kgo.Record{Topic: "sj-clicks", Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"user": %q, "click": %d, "ts": %d}`, e.user, e.n, e.ts))})
			if i%3 == 0 {
				v := sjEvent{user: e.user, n: n, ts: e.ts + 5, isView: true}
				evs = append(evs, v)
				rs = append(rs, &kgo.Record{Topic: "sj-views", Partition: int32(i % 2), Value: []byte(fmt.Sprintf(`{"user": %q, "view": %d, "ts": %d}`, v.user, v.n, v.ts))})
			}
		}
		produce(rs)
	}
	path := filepath.Join(t.TempDir(), "session-join.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(sessionJoinSpec, c.KafkaAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	id := c.Submit(path)
	c.WaitRunning(id, 1, 60*time.Second)
	next, kills := int64(0), 2
	for k := 1; k <= kills; k++ {
		for range 3 {
			batch(next)
			next++
		}
		j := c.Job(id)
		chk := c.WaitCheckpoint(id, j.Attempt, 0, 90*time.Second).ID
		ws := c.nodeWorkers(id, "joined")
		if len(ws) == 0 {
			t.Fatal("no worker runs the join")
		}
		t.Logf("kill %d: SIGKILL %s in attempt %d (checkpoint %d completed)", k, ws[0], j.Attempt, chk)
		c.Workers[ws[0]].Kill()
		c.StartWorker(fmt.Sprintf("worker-%d", 3+k), 4, nil)
		c.WaitRunning(id, j.Attempt+1, 90*time.Second)
	}
	for range 2 {
		batch(next)
		next++
	}
	// Far ahead on every partition: the watermark passes every session.
	far := t0 + 1_000_000_000
	var rs []*kgo.Record
	for p := range int32(2) {
		rs = append(rs,
			&kgo.Record{Topic: "sj-clicks", Partition: p, Value: []byte(fmt.Sprintf(`{"user": "zz", "click": -1, "ts": %d}`, far))},
			&kgo.Record{Topic: "sj-views", Partition: p, Value: []byte(fmt.Sprintf(`{"user": "zz", "view": -1, "ts": %d}`, far))})
	}
	produce(rs)
	want := sessionJoinModel(evs)
	var got []string
	proc.Eventually(t, 3*time.Minute, func() (bool, string) {
		got = readCommittedTopic(t, c.KafkaAddr, "sj-out")
		return len(got) >= len(want), fmt.Sprintf("%d of %d rows committed", len(got), len(want))
	})
	canon := func(s []string) []string {
		out := make([]string, len(s))
		for i, l := range s {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("output %q: %v", l, err)
			}
			b, _ := json.Marshal(m)
			out[i] = string(b)
		}
		slices.Sort(out)
		return out
	}
	g, w := canon(got), canon(want)
	if !slices.Equal(g, w) {
		lost, dup := 0, 0
		count := map[string]int{}
		for _, l := range w {
			count[l]++
		}
		for _, l := range g {
			count[l]--
		}
		for _, n := range count {
			if n > 0 {
				lost += n
			} else {
				dup -= n
			}
		}
		t.Fatalf("%d rows committed, model %d: %d lost, %d duplicated or unexpected", len(g), len(w), lost, dup)
	}
	j := c.Job(id)
	t.Logf("%d rows exactly once after %d restarts", len(g), j.Restarts)
	if j.State != "RUNNING" || j.Restarts != kills {
		t.Fatalf("job after %d kills: %s, %d restarts, failure %q", kills, j.State, j.Restarts, j.FailureCause)
	}
}

// readCommittedTopic reads a topic with read_committed isolation until a
// poll comes back empty.
func readCommittedTopic(t *testing.T, addr, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			n++
		})
		if n == 0 {
			return out
		}
	}
}
