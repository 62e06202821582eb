package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/coordinator/api"
	_ "github.com/weir-stream/weir/examples/sdk" // registers example.dedup, example.count_per_minute
	"github.com/weir-stream/weir/internal/cluster"
	"github.com/weir-stream/weir/sdk"
)

// sdkJob counts each user's events per minute with example.count_per_minute
// and deduplicates them by id with example.dedup, both user operators
// written with the SDK, writing exactly once to Kafka.
const sdkJob = `name: sdk-ops
parallelism: {{par}}
checkpoint: {interval: 100ms}
pipeline:
  - name: src
    parallelism: 1
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: sdk-events}
      schema: {id: int, user: string, ts: int}
      event_time: {field: ts, watermark_interval: 20ms}
  - name: by-user
    inputs: [src]
    key_by: user
  - name: count
    process: {operator: example.count_per_minute}
  - name: counts-out
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: sdk-counts, delivery: exactly-once}
  - name: by-id
    inputs: [src]
    key_by: id
  - name: dedup
    process: {operator: example.dedup, config: {ttl: 1h}}
  - name: dedup-out
    sink:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: sdk-unique, delivery: exactly-once}
`

// sdkModel is what the job must have written once the input up to a
// watermark has been read.
type sdkModel struct {
	counts map[[2]any]int64 // (user, window end) -> count
	ids    map[int64]bool
	maxTS  int64
}

func (m *sdkModel) add(id int64, user string, ts int64) cluster.Message {
	end := ts - ts%60_000 + 60_000
	m.counts[[2]any{user, end}]++
	m.ids[id] = true
	m.maxTS = max(m.maxTS, ts)
	return cluster.Message{Value: fmt.Appendf(nil, `{"id": %d, "user": %q, "ts": %d}`, id, user, ts)}
}

// want returns the count lines of the windows the watermark (the largest
// time read - 1) has fired, and the ids dedup forwards.
func (m *sdkModel) want() (counts, ids []string) {
	wm := m.maxTS - 1
	for k, n := range m.counts {
		if end := k[1].(int64); end-1 <= wm {
			counts = append(counts, line(map[string]any{"key": k[0], "window_start": end - 60_000, "window_end": end, "count": n}))
		}
	}
	for id := range m.ids {
		ids = append(ids, fmt.Sprint(id))
	}
	return counts, ids
}

// readCommitted reads a topic with read_committed isolation: what an
// exactly-once sink committed, and nothing it aborted.
func readCommitted(t *testing.T, addr, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, canonical(string(r.Value)))
			n++
		})
		if n == 0 {
			return out
		}
	}
}

func TestSDKOperatorsExactlyOnceAcrossFailoverAndRescale(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 4, Slots: 5, Kafka: true})
	c.CreateTopic(t, "sdk-events", 1)
	c.CreateTopic(t, "sdk-counts", 1)
	c.CreateTopic(t, "sdk-unique", 1)
	m := &sdkModel{counts: map[[2]any]int64{}, ids: map[int64]bool{}}
	users := []string{"ann", "bob", "cid", "dan", "eve"}
	id := int64(0)
	// batch writes n events, two seconds apart, every fourth repeating an
	// earlier id (dedup drops it), from time `from` on.
	batch := func(from int64, n int) int64 {
		var msgs []cluster.Message
		ts := from
		for i := range n {
			eid := id
			if i%4 == 3 {
				eid = id - 2
			} else {
				id++
			}
			msgs = append(msgs, m.add(eid, users[(i*7)%len(users)], ts))
			ts += 2_000
		}
		c.Produce(t, "sdk-events", msgs...)
		return ts
	}
	check := func(what string, j func() *api.Job) {
		t.Helper()
		wantCounts, wantIDs := m.want()
		var gotCounts, gotIDs []string
		cluster.Eventually(t, 60*time.Second, func() bool {
			gotCounts = readCommitted(t, c.KafkaAddr(), "sdk-counts")
			gotIDs = gotIDs[:0]
			for _, l := range readCommitted(t, c.KafkaAddr(), "sdk-unique") {
				i := strings.Index(l, `"id":`)
				gotIDs = append(gotIDs, strings.SplitN(l[i+5:], ",", 2)[0])
			}
			return len(gotCounts) >= len(wantCounts) && len(gotIDs) >= len(wantIDs)
		}, "%s: %d counts and %d unique ids", what, len(wantCounts), len(wantIDs))
		sameLines(t, what+": counts\n"+cluster.Describe(j()), gotCounts, wantCounts)
		sameLines(t, what+": unique ids", gotIDs, wantIDs)
	}
	ctx := context.Background()
	cl := c.Client()

	job := c.Submit(t, spec(sdkJob, "{{par}}", "2"))
	c.WaitState(t, job, "RUNNING", 30*time.Second)
	next := batch(t0, 100)
	jobNow := func() *api.Job { return c.Job(t, job) }
	check("first run", jobNow)

	// The operators' metrics: dedup's counter of dropped repeats (25 in
	// the first batch) and the keyed state gauges, per subtask.
	workers, err := cl.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dropped float64
	var entries int
	series := regexp.MustCompile(`(?m)^weir_user_dedup_dropped_total\{job="[^"]+",node="dedup",subtask="\d",vertex="dedup"\} (\d+)$`)
	for _, w := range workers {
		text := scrapeText(t, "http://"+w.HTTPAddr+"/metrics")
		for _, m := range series.FindAllStringSubmatch(text, -1) {
			n, _ := strconv.ParseFloat(m[1], 64)
			dropped += n
		}
		entries += len(regexp.MustCompile(`(?m)^weir_keyed_state_entries\{.*node="(count|dedup)"`).FindAllString(text, -1))
	}
	if dropped != 25 || entries != 4 {
		t.Fatalf("weir_user_dedup_dropped_total sums to %v (want 25), %d weir_keyed_state_entries series (want 4)", dropped, entries)
	}

	// A worker dies after a checkpoint: every subtask restores from it,
	// state and timers included, and the sinks' transactions keep the
	// output exact. The worker killed runs one of the count operator's
	// subtasks.
	c.KillWorkerRunning(t, job, "count", 3)
	next = batch(next, 100)
	check("after the restore", jobNow)

	// Stop with a savepoint, resume at parallelism 3: the key groups move.
	loc := c.StopWithSavepoint(t, job)
	job2 := c.SubmitFromSavepoint(t, spec(sdkJob, "{{par}}", "3"), loc)
	batch(next, 100)
	check("after rescaling from the savepoint", func() *api.Job { return c.Job(t, job2) })
}

func TestSDKSubmitErrors(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2})
	for _, tc := range []struct{ process, want string }{
		{`{operator: acme.nope}`, `pipeline[2].process.operator: no operator "acme.nope" in this weir binary; it has`},
		{`{operator: example.dedup, config: {ttl: soon}}`, `pipeline[2].process.config.ttl: want a duration such as 10m, got "soon"`},
		{`{operator: example.dedup, config: {tll: 1h}}`, `pipeline[2].process.config.tll: unknown field`},
		{`{operator: example.count_per_minute, config: {window_ms: -1}}`, `pipeline[2].process.config.window_ms: must be positive`},
	} {
		_, err := c.TrySubmit(`name: bad
pipeline:
  - source: {datagen: {count: 1}}
  - key_by: ip
  - process: ` + tc.process + `
  - sink: {discard: {}}
`)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.process, err, tc.want)
		}
	}
}

// reminder emits {user, reminded: true} 50 ms of processing time after a
// user's first event: a processing-time timer that fires while no input
// arrives (the task's tick wakes it).
type reminder struct{ seen *sdk.Value[bool] }

func (r *reminder) Open(ctx *sdk.OpenContext) (err error) {
	r.seen, err = sdk.NewValue(ctx, sdk.ValueDescriptor[bool]{Name: "seen"})
	return err
}

func (r *reminder) ProcessElement(ctx *sdk.Context, _ sdk.Record, _ *sdk.Collector[sdk.Record]) error {
	if seen, _, err := r.seen.Get(); err != nil || seen {
		return err
	}
	ctx.Timers().RegisterProcessingTimeTimer(ctx.ProcessingTime() + 50)
	return r.seen.Update(true)
}

func (r *reminder) OnTimer(ctx *sdk.Context, t sdk.Timer, out *sdk.Collector[sdk.Record]) error {
	return out.Emit(sdk.NewRecord(map[string]any{"user": ctx.Key(), "reminded": t.Domain == sdk.ProcessingTime}))
}

func init() {
	sdk.RegisterProcess("pipelinetest.reminder", func(struct{}) (sdk.ProcessFunction[sdk.Record, sdk.Record], error) {
		return &reminder{}, nil
	})
}

func TestSDKProcessingTimeTimersFireWithoutInput(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 4, Kafka: true})
	c.CreateTopic(t, "remind-in", 1)
	c.CreateTopic(t, "remind-out", 1)
	c.Produce(t, "remind-in",
		cluster.Message{Value: []byte(`{"user": "ann"}`)},
		cluster.Message{Value: []byte(`{"user": "bob"}`)},
		cluster.Message{Value: []byte(`{"user": "ann"}`)})
	job := c.Submit(t, `name: remind
pipeline:
  - source: {kafka: {brokers: ["${KAFKA_BROKERS}"], topic: remind-in}}
  - key_by: user
  - process: {operator: pipelinetest.reminder}
  - sink: {kafka: {brokers: ["${KAFKA_BROKERS}"], topic: remind-out}}
`)
	var got []string
	cluster.Eventually(t, 30*time.Second, func() bool {
		got = got[:0]
		for _, m := range c.ReadTopic(t, "remind-out") {
			got = append(got, canonical(string(m.Value)))
		}
		return len(got) >= 2
	}, "the reminders")
	sameLines(t, "reminders", got, []string{`{"reminded":true,"user":"ann"}`, `{"reminded":true,"user":"bob"}`})
	c.Cancel(t, job)
}

func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
