package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// Helpers for the checkpoint, failover and savepoint tests: the ip-visits
// job with extra spec blocks, a loadgen process in the background, polling
// the REST API, and weir verify's JSON.

// ipVisitsSpec writes examples/ip-visits.yaml to the test's temporary
// directory with the top-level blocks of extra (checkpoint:, restart:, one
// line each) in place of the example's own, and the fields sinkKafka
// ("delivery: exactly-once") added to the Kafka sink.
func (c *cluster) ipVisitsSpec(extra string, sinkKafka ...string) string {
	c.T.Helper()
	base, err := os.ReadFile("../../examples/ip-visits.yaml")
	if err != nil {
		c.T.Fatal(err)
	}
	replaced := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(extra), "\n") {
		if key, _, ok := strings.Cut(line, ":"); ok {
			replaced[key] = true
		}
	}
	var out []string
	skipping := false
	for _, line := range strings.Split(string(base), "\n") {
		top := line != "" && line[0] != ' ' && line[0] != '#'
		if top {
			key, _, _ := strings.Cut(line, ":")
			skipping = replaced[key]
		}
		if !skipping || (!top && line != "" && line[0] == '#') {
			out = append(out, line)
		}
	}
	spec := strings.Join(out, "\n") + "\n" + extra
	for _, set := range sinkKafka {
		// The sink's kafka block is the last one, its fields at 8 spaces.
		i := strings.LastIndex(spec, "        topic: ${OUTPUT_TOPIC:-ip-visits}\n")
		if i < 0 {
			c.T.Fatal("examples/ip-visits.yaml: no sink topic ip-visits to add to")
		}
		spec = spec[:i] + "        " + set + "\n" + spec[i:]
	}
	path := filepath.Join(c.T.TempDir(), "ip-visits.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		c.T.Fatal(err)
	}
	return path
}

// restarts fetches the job's restart records.
func (c *cluster) restarts(id string) *api.Restarts {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := c.API.Restarts(ctx, id)
	if err != nil {
		c.T.Fatalf("GET restarts of %s: %v", id, err)
	}
	return rs
}

// workersOf returns the workers running subtasks of the job's current
// attempt, the busiest first.
func (c *cluster) workersOf(id string) []string {
	c.T.Helper()
	n := map[string]int{}
	for _, v := range c.Job(id).Vertices {
		for _, s := range v.Subtasks {
			if s.Worker != "" {
				n[s.Worker]++
			}
		}
	}
	var ws []string
	for w := range n {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(a, b int) bool {
		if n[ws[a]] != n[ws[b]] {
			return n[ws[a]] > n[ws[b]]
		}
		return ws[a] < ws[b]
	})
	return ws
}

// sourceRecordsIn sums records_in over the subtasks of the vertex holding
// the access-log source in the current attempt.
func (c *cluster) sourceRecordsIn(id string) int64 {
	c.T.Helper()
	var n int64
	for _, v := range c.Job(id).Vertices {
		if !strings.Contains(v.ID, "access-log") && !slices.Contains(v.Nodes, "access-log") {
			continue
		}
		for _, s := range v.Subtasks {
			n += max(s.RecordsIn, s.RecordsOut)
		}
	}
	return n
}

// loadgen is weir loadgen access-log as a background process.
type loadgen struct {
	c            *cluster
	p            *proc.Process
	started      time.Time
	expectedSpan time.Duration // events / rate; 0 without a rate
}

// startLoadgen writes events access-log records at rate per second (0: as
// fast as possible) to the topic access-log with 4 partitions.
func (c *cluster) startLoadgen(events, seed int, rate float64) *loadgen {
	c.T.Helper()
	p := proc.Start(c.T, c.Dir, c.Bin, "loadgen", nil,
		"loadgen", "access-log", "--brokers", c.KafkaAddr, "--topic", "access-log",
		"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4",
		"--rate", strconv.FormatFloat(rate, 'f', -1, 64))
	lg := &loadgen{c: c, p: p, started: time.Now()}
	if rate > 0 {
		lg.expectedSpan = time.Duration(float64(events) / rate * float64(time.Second))
	}
	return lg
}

// wait waits for loadgen to exit 0.
func (lg *loadgen) wait(timeout time.Duration) time.Duration {
	lg.c.T.Helper()
	code, err := lg.p.Wait(timeout)
	if err != nil {
		lg.c.T.Fatalf("loadgen: %v (log %s)", err, lg.p.LogPath)
	}
	if code != 0 {
		log, _ := os.ReadFile(lg.p.LogPath)
		lg.c.T.Fatalf("loadgen: exit %d\n%s", code, log)
	}
	return time.Since(lg.started)
}

// verifyOnce runs weir verify ip-visits -o json once.
func (c *cluster) verifyOnce(events, seed int, extra ...string) accesslog.Report {
	c.T.Helper()
	args := append([]string{"verify", "ip-visits", "--brokers", c.KafkaAddr, "--topic", "ip-visits",
		"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", "4",
		"--idle", "500ms", "-o", "json"}, extra...)
	out, code := c.Weir(args...)
	// The output is the JSON result (standard output), then on a mismatch
	// one error line (standard error).
	var r accesslog.Report
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&r); err != nil {
		c.T.Fatalf("weir verify: exit %d, not JSON: %v\n%s", code, err, out)
	}
	if r.OK != (code == 0) {
		c.T.Fatalf("weir verify: exit %d with ok=%v\n%s", code, r.OK, out)
	}
	return r
}

// verifyCaughtUp polls weir verify until no window is lost (the job has
// caught up with the input) and returns the result. Wrong, unexpected and
// malformed output never goes away, so it fails the test at once.
func (c *cluster) verifyCaughtUp(events, seed int, timeout time.Duration, extra ...string) accesslog.Report {
	c.T.Helper()
	var r accesslog.Report
	proc.Eventually(c.T, timeout, func() (bool, string) {
		r = c.verifyOnce(events, seed, extra...)
		if r.Wrong+r.Unexpected > 0 || len(r.Malformed) > 0 {
			c.T.Fatalf("weir verify: wrong or unexpected output: %s", r)
		}
		return r.Lost == 0, r.String()
	})
	return r
}

// checkOutput fails the test when verify found lost, malformed, wrong or
// unexpected windows, and duplicated ones unless allowDuplicates.
func checkOutput(t *testing.T, r accesslog.Report, allowDuplicates bool) {
	t.Helper()
	bad := r.Lost > 0 || len(r.Malformed) > 0 || (!allowDuplicates && r.Duplicated > 0) || r.Wrong+r.Unexpected > 0
	if bad {
		t.Fatalf("verify: %s", r)
	}
}

// checkRestartRecord checks that a restart record is complete: a cause,
// a new attempt, a checkpoint restored from, and the five timestamps in
// order. With upTo less than 5 only the first upTo timestamps must be set
// (an attempt that failed while restoring has no restored and running
// time).
func checkRestartRecord(r api.Restart, upTo int) error {
	if r.Cause == "" || r.GaveUp || r.Attempt != r.FailedAttempt+1 {
		return fmt.Errorf("restart record %+v: want a cause and attempt = failed_attempt+1, not given up", r)
	}
	if r.RestoredFrom <= 0 || r.Location == "" {
		return fmt.Errorf("restart of attempt %d restored from no checkpoint: %+v", r.FailedAttempt, r)
	}
	stamps := []*time.Time{&r.DetectedAt, r.CancelledAt, r.ScheduledAt, r.RestoredAt, r.RunningAt}
	names := []string{"detected", "cancelled", "scheduled", "restored", "running"}
	for i, s := range stamps[:upTo] {
		if s == nil || s.IsZero() {
			return fmt.Errorf("restart of attempt %d has no %s time: %+v", r.FailedAttempt, names[i], r)
		}
		if i > 0 && s.Before(*stamps[i-1]) {
			return fmt.Errorf("restart of attempt %d: %s %s before %s %s", r.FailedAttempt,
				names[i], s.Format(time.RFC3339Nano), names[i-1], stamps[i-1].Format(time.RFC3339Nano))
		}
	}
	return nil
}

func timeline(r api.Restart) string {
	d := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Sub(r.DetectedAt).Round(time.Millisecond).String()
	}
	return fmt.Sprintf("attempt %d→%d restored from %d; cancelled +%s scheduled +%s restored +%s running +%s; cause %q",
		r.FailedAttempt, r.Attempt, r.RestoredFrom, d(r.CancelledAt), d(r.ScheduledAt), d(r.RestoredAt), d(r.RunningAt), r.Cause)
}

// causedByLoss reports whether a restart's cause is the loss of the killed
// worker. (A subtask elsewhere whose input channel from it broke may be
// reported first; the coordinator keeps the root cause.)
func causedByLoss(cause, killed string) bool {
	return strings.Contains(cause, "worker "+killed+" lost")
}

// metric returns the value of one sample (name with its labels, as
// printed) from the coordinator's /metrics, "" when absent.
func (c *cluster) metric(sample string) string {
	c.T.Helper()
	resp, err := http.Get("http://" + c.HTTPAddr + "/metrics")
	if err != nil {
		c.T.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.T.Fatalf("GET /metrics: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
