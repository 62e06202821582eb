package coordinator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/cluster"
)

// TestRESTOnRealCluster runs a Kafka job with checkpoints on real workers
// and a dev broker, then: the graph, subtasks and Kafka lag endpoints show
// real figures (every produced record consumed and checkpointed: offset =
// end offset on every partition), a lost worker yields a restart with its
// timeline, and every metric name docs/metrics.md lists is exposed by the
// coordinator or a worker.
func TestRESTOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster with a Kafka broker")
	}
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4, Kafka: true, HeartbeatTimeout: 10 * time.Second})
	ctx := context.Background()
	cl := c.Client()
	const topic, perPartition = "rest-in", 25
	c.CreateTopic(t, topic, 4)
	var msgs []cluster.Message
	for p := int32(0); p < 4; p++ {
		for i := range perPartition {
			msgs = append(msgs, cluster.Message{Partition: p, Value: fmt.Appendf(nil, `{"id": %d}`, int(p)*1000+i)})
		}
	}
	c.Produce(t, topic, msgs...)
	id := c.Submit(t, fmt.Sprintf(`name: rest-real
parallelism: 2
checkpoint: {interval: 100ms, storage: "file://%s"}
restart: {strategy: fixed, attempts: 5, delay: 0s}
pipeline:
  - name: src
    source: {kafka: {brokers: ["${KAFKA_BROKERS}"], topic: %s}, event_time: {field: id}}
  - name: by-id
    key_by: id
  - name: per-id
    window: {tumbling: 1m, aggregates: {n: count()}}
  - name: out
    sink: {discard: {}}
`, t.TempDir(), topic))
	c.WaitState(t, id, "RUNNING", 30*time.Second)

	var lag *api.KafkaLag
	cluster.Eventually(t, 30*time.Second, func() bool {
		var err error
		lag, err = cl.KafkaLag(ctx, id)
		if err != nil || lag.Basis != "checkpoint" || len(lag.Sources) != 1 || len(lag.Sources[0].Partitions) != 4 {
			return false
		}
		for _, p := range lag.Sources[0].Partitions {
			if p.Offset == nil || *p.Offset != perPartition || p.EndOffset == nil || *p.EndOffset != perPartition || p.Lag == nil || *p.Lag != 0 {
				return false
			}
		}
		return lag.TotalLag == 0
	}, "every partition checkpointed at its end offset: %+v", lag)
	s := lag.Sources[0]
	if s.Error != "" || s.Node != "src" || s.Partitions[3].Subtask != 1 || lag.CheckpointAt == nil {
		t.Fatalf("%+v", lag)
	}

	g, err := cl.Graph(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Vertices) != 2 || len(g.Edges) != 1 || g.Edges[0].Partitioning != "hash" || g.Vertices[0].States["RUNNING"] != 2 {
		t.Fatalf("graph %+v", g)
	}
	cluster.Eventually(t, 10*time.Second, func() bool {
		st, err := cl.Subtasks(ctx, id)
		if err != nil || len(st.Subtasks) != 4 {
			return false
		}
		var in int64
		for _, x := range st.Subtasks {
			if x.Worker == "" || x.WorkerHTTPAddr == "" || x.State != "RUNNING" {
				return false
			}
			if x.Vertex == "src" {
				in += x.RecordsOut
			}
		}
		return in == 4*perPartition
	}, "subtasks to report every record read")

	// Lose a worker: the job restarts and records the timeline.
	c.KillWorker(1)
	var rs *api.Restarts
	cluster.Eventually(t, 30*time.Second, func() bool {
		rs, err = cl.Restarts(ctx, id)
		return err == nil && len(rs.Restarts) == 1 && rs.Restarts[0].RunningAt != nil
	}, "the restart to complete: %+v", rs)
	r := rs.Restarts[0]
	if r.CancelledAt == nil || r.ScheduledAt == nil || r.RestoredAt == nil || r.RestoredFrom == 0 || !strings.Contains(r.Cause, "w2") {
		t.Fatalf("%+v", r)
	}

	workers, err := cl.Workers(ctx)
	if err != nil || len(workers) != 1 {
		t.Fatalf("%v %v", workers, err)
	}
	// Records after the restore move every subtask's watermark, so each
	// vertex has one (its least) to expose.
	var more []cluster.Message
	for p := int32(0); p < 4; p++ {
		more = append(more, cluster.Message{Partition: p, Value: fmt.Appendf(nil, `{"id": %d}`, 90000+int(p))})
	}
	c.Produce(t, topic, more...)
	cluster.Eventually(t, 30*time.Second, func() bool {
		g, err := cl.Graph(ctx, id)
		if err != nil {
			return false
		}
		for _, v := range g.Vertices {
			// A trickle of records: every vertex mostly waits for input.
			if v.Watermark == nil || v.EventTimeLagMs == nil || *v.EventTimeLagMs != g.SampledAt.UnixMilli()-*v.Watermark || v.IdleMs <= v.BusyMs {
				return false
			}
		}
		return true
	}, "a watermark and event-time lag on every vertex")
	cluster.Eventually(t, 30*time.Second, func() bool {
		lag, err := cl.KafkaLag(ctx, id)
		return err == nil && lag.Basis == "checkpoint" && len(lag.Sources) == 1 && lag.Sources[0].Partitions[0].Lag != nil && *lag.Sources[0].Partitions[0].Lag == 0
	}, "a checkpoint after the new records")
	exposed := map[string]string{
		"Coordinator": scrape(t, "http://"+c.Coordinator().HTTPAddr()+"/metrics"),
		"Worker":      scrape(t, "http://"+workers[0].HTTPAddr+"/metrics"),
	}
	for section, names := range documentedMetrics(t) {
		text, ok := exposed[section]
		if !ok {
			t.Fatalf("docs/metrics.md has a section %q that the test does not know", section)
		}
		for _, n := range names {
			if !regexp.MustCompile(`(?m)^` + n + `[{ ]`).MatchString(text) {
				t.Errorf("%s metric %s is documented but not exposed", section, n)
			}
		}
	}
	if !strings.Contains(exposed["Coordinator"], `weir_job_source_lag_records{job="`+id+`",partition="0",topic="`+topic+`",vertex="src"} 0`) {
		t.Errorf("no lag series for partition 0:\n%s", grep(exposed["Coordinator"], "weir_job_source_lag"))
	}
}

// documentedMetrics reads docs/metrics.md: metric names by "## " section.
func documentedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	row := regexp.MustCompile("^\\| `(weir_[a-z_]+)` \\|")
	for _, line := range strings.Split(string(data), "\n") {
		if s, ok := strings.CutPrefix(line, "## "); ok {
			section = s
		}
		if m := row.FindStringSubmatch(line); m != nil {
			out[section] = append(out[section], m[1])
		}
	}
	if len(out["Coordinator"]) < 15 || len(out["Worker"]) < 5 {
		t.Fatalf("docs/metrics.md lists too few metrics: %v", out)
	}
	return out
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: %d %v", url, resp.StatusCode, err)
	}
	return string(data)
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
