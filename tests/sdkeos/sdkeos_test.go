package sdkeos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/connectors/kafka"
	"github.com/weir-stream/weir/internal/proc"
)

// BinaryEnv names a weir binary built with the examples to use instead of
// building one (for a quick rerun).
const BinaryEnv = "WEIR_SDKEOS_BIN"

// SeedEnv names an environment variable that sets the input's seed.
const SeedEnv = "WEIR_SDKEOS_SEED"

// The module the test builds weir with: a user's module that compiles
// weir's example operators in by importing their package.
const (
	modulePath = "example.com/weirexamples"
	moduleGo   = `// Package weirexamples compiles weir's example operators into a weir.
package weirexamples

import _ "github.com/weir-stream/weir/examples/sdk"
`
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// examplesBinary builds, once per test binary, a weir with the examples
// module: weir build --with example.com/weirexamples=<dir>, on this
// checkout.
func examplesBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	stock := proc.Binary(t)
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "weir-sdkeos-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		mod := filepath.Join(dir, "weirexamples")
		gomod := fmt.Sprintf("module %s\n\ngo 1.26\n\nrequire github.com/weir-stream/weir v0.0.0\n\nreplace github.com/weir-stream/weir => %s\n", modulePath, root)
		for name, data := range map[string]string{"go.mod": gomod, "examples.go": moduleGo} {
			if err := os.MkdirAll(mod, 0o755); err != nil {
				buildErr = err
				return
			}
			if err := os.WriteFile(filepath.Join(mod, name), []byte(data), 0o644); err != nil {
				buildErr = err
				return
			}
		}
		buildPath = filepath.Join(dir, "weir")
		// A backstop only: with make build's cache this links one more
		// main package; on a cold cache it compiles all of weir.
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, stock, "build", "--with", modulePath+"="+mod,
			"--with", "github.com/weir-stream/weir="+root, "-o", buildPath)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("weir build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// The input: transactions for example.fraud, activity for example.session,
// each on a topic of four partitions. An account's (a user's) records are
// all in one partition, so their order is the partition's in every run and
// replay. Event times rise along a partition, each record up to
// outOfOrder behind the largest before it: never behind its partition's
// watermark (that largest time less max_out_of_orderness and 1 ms), so no
// record is late in any run and the output is a function of the input.
const (
	partitions = 4
	t0         = int64(1_767_225_600_000) // 2026-01-01
	gap        = int64(30 * 60_000)       // example.session's default
	outOfOrder = int64(5 * 60_000)        // the clicks source's max_out_of_orderness
)

type txn struct {
	Account string  `json:"account"`
	Amount  float64 `json:"amount"`
	TS      int64   `json:"ts"`
	part    int32
}

type click struct {
	User  string `json:"user"`
	Value int64  `json:"value"`
	TS    int64  `json:"ts"`
	part  int32
}

// generate makes n records per topic, interleaved over the partitions.
func generate(seed uint64, n int) ([]txn, []click) {
	rng := rand.New(rand.NewPCG(seed, 12))
	amounts := []float64{0.5, 0.99, 3, 120, 501, 900}
	var txns []txn
	var clicks []click
	tbase := [partitions]int64{t0, t0, t0, t0}
	cbase := tbase
	for i := range n {
		p := int32(i % partitions)
		tbase[p] += 10_000 * rng.Int64N(3) // steps of 10 s: pairs exactly a minute apart too
		a := rng.IntN(10)*partitions + int(p)
		txns = append(txns, txn{Account: fmt.Sprintf("acct-%02d", a), Amount: amounts[rng.IntN(len(amounts))], TS: tbase[p], part: p})
		cbase[p] += rng.Int64N(4 * 60_000)
		u := rng.IntN(10)*partitions + int(p)
		clicks = append(clicks, click{User: fmt.Sprintf("user-%02d", u), Value: rng.Int64N(1000), TS: cbase[p] + rng.Int64N(outOfOrder+1), part: p})
	}
	return txns, clicks
}

// fraudModel: an alert for a transaction over $500 whose account's
// previous transaction was under $1 and at most a minute earlier.
func fraudModel(txns []txn) []string {
	var out []string
	last := map[string]txn{}
	for _, t := range txns {
		if p, ok := last[t.Account]; ok && p.Amount < 1 && t.Amount > 500 && t.TS <= p.TS+60_000 {
			out = append(out, alertLine(t.Account, p.Amount, t.Amount))
		}
		last[t.Account] = t
	}
	slices.Sort(out)
	return out
}

func alertLine(account string, small, large float64) string {
	return fmt.Sprintf("%s %v %v", account, small, large)
}

// sessionModel: each user's clicks in time order, a new session wherever
// two consecutive ones are the gap or more apart.
func sessionModel(clicks []click) []string {
	byUser := map[string][]click{}
	for _, c := range clicks {
		byUser[c.User] = append(byUser[c.User], c)
	}
	var out []string
	for user, cs := range byUser {
		slices.SortStableFunc(cs, func(a, b click) int { return int(a.TS - b.TS) })
		start, n, total := cs[0].TS, 0, int64(0)
		for i, c := range cs {
			if i > 0 && c.TS-cs[i-1].TS >= gap {
				out = append(out, sessionLine(user, start, cs[i-1].TS+gap, n, total))
				start, n, total = c.TS, 0, 0
			}
			n++
			total += c.Value
		}
		out = append(out, sessionLine(user, start, cs[len(cs)-1].TS+gap, n, total))
	}
	slices.Sort(out)
	return out
}

func sessionLine(user string, start, end int64, events int, total int64) string {
	return fmt.Sprintf("%s %d-%d %d %d", user, start, end, events, total)
}

// decodeAlert and decodeSession turn the sinks' JSON into model lines.
func decodeAlert(v []byte) (string, error) {
	var a struct {
		Account      string
		Small, Large float64
	}
	err := json.Unmarshal(v, &a)
	return alertLine(a.Account, a.Small, a.Large), err
}

func decodeSession(v []byte) (string, error) {
	var s struct {
		Key               string
		Start, End, Total int64
		Events            int
	}
	err := json.Unmarshal(v, &s)
	return sessionLine(s.Key, s.Start, s.End, s.Events, s.Total), err
}

// jobSpec is both examples in one job, each from its topic to its own
// exactly-once sink. Idleness is off: a partition's watermark holds the
// job's back while its records are on the way, also after a restart.
func jobSpec(t *testing.T, kafkaAddr string) string {
	spec := fmt.Sprintf(`name: sdk-eos
checkpoint: {interval: 1s}
restart: {strategy: fixed, attempts: 20, delay: 500ms}
pipeline:
  - name: txns
    source:
      kafka: {brokers: [%[1]q], topic: txns}
      schema: {account: string, amount: float, ts: int}
      event_time: {field: ts, max_out_of_orderness: 1s, idle_timeout: 0s, watermark_interval: 50ms}
  - name: by-account
    key_by: account
  - name: fraud
    process: {operator: example.fraud, config: {window: 1m}}
  - name: alerts
    sink:
      kafka: {brokers: [%[1]q], topic: alerts, key: account, delivery: exactly-once}
  - name: clicks
    source:
      kafka: {brokers: [%[1]q], topic: clicks}
      schema: {user: string, value: int, ts: int}
      event_time: {field: ts, max_out_of_orderness: 5m, idle_timeout: 0s, watermark_interval: 50ms}
  - name: by-user
    key_by: user
  - name: sessions
    process: {operator: example.session, config: {gap: 30m}}
  - name: sessions-out
    sink:
      kafka: {brokers: [%[1]q], topic: sessions, key: key, delivery: exactly-once}
`, kafkaAddr)
	path := filepath.Join(t.TempDir(), "sdk-eos.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// producer writes records to their partitions at about rate records per
// second per topic.
type producer struct {
	cl   *kgo.Client
	done chan error
}

func newProducer(t *testing.T, addr string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{cl: cl}
}

func records(txns []txn, clicks []click) []*kgo.Record {
	var rs []*kgo.Record
	for i := range max(len(txns), len(clicks)) {
		if i < len(txns) {
			v, _ := json.Marshal(txns[i])
			rs = append(rs, &kgo.Record{Topic: "txns", Partition: txns[i].part, Key: []byte(txns[i].Account), Value: v})
		}
		if i < len(clicks) {
			v, _ := json.Marshal(clicks[i])
			rs = append(rs, &kgo.Record{Topic: "clicks", Partition: clicks[i].part, Key: []byte(clicks[i].User), Value: v})
		}
	}
	return rs
}

// start produces rs in the background, batch records every 100 ms.
func (p *producer) start(rs []*kgo.Record, batch int) {
	p.done = make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for len(rs) > 0 {
			n := min(batch, len(rs))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := p.cl.ProduceSync(ctx, rs[:n]...).FirstErr()
			cancel()
			if err != nil {
				p.done <- err
				return
			}
			rs = rs[n:]
			<-tick.C
		}
		p.done <- nil
	}()
}

func (p *producer) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("produce: not done after 3 minutes")
	}
}

// readCommitted reads a topic from the start with read_committed, up to
// its end (until a fetch brings nothing), as model lines.
func readCommitted(t *testing.T, addr, topic string, decode func([]byte) (string, error)) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	// The first fetch waits for the client's metadata, the others only
	// for what a single broker has not sent yet.
	wait := 10 * time.Second
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		wait = time.Second
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			l, err := decode(r.Value)
			if err != nil {
				t.Fatalf("%s: record %s: %v", topic, r.Value, err)
			}
			out = append(out, l)
			n++
		})
		if n == 0 {
			slices.Sort(out)
			return out
		}
	}
}

// diff compares sorted multisets: what the model has that got lacks
// (lost), what got has more often than the model (duplicated), and what
// the model does not have at all (unexpected).
func diff(got, want []string) (lost, dup, unexpected []string) {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
		switch {
		case count[g] == 0:
			unexpected = append(unexpected, g)
		case seen[g] > count[g]: // a duplicate, or a wrong result equal to a right one
			dup = append(dup, g)
		}
	}
	for w, n := range count {
		for range n - min(n, seen[w]) {
			lost = append(lost, w)
		}
	}
	slices.Sort(lost)
	return lost, dup, unexpected
}

func head(ls []string) string {
	if len(ls) > 5 {
		return strings.Join(ls[:5], "; ") + fmt.Sprintf("; … (%d)", len(ls))
	}
	return strings.Join(ls, "; ")
}

type output struct {
	topic  string
	decode func([]byte) (string, error)
	want   []string
}

// checkSoFar: what a read_committed reader sees now is part of the model,
// nothing duplicated.
func checkSoFar(t *testing.T, addr string, outs []output) {
	t.Helper()
	for _, o := range outs {
		got := readCommitted(t, addr, o.topic, o.decode)
		_, dup, unexpected := diff(got, o.want)
		if len(dup) > 0 || len(unexpected) > 0 {
			t.Fatalf("%s: %d records read_committed, %d duplicated (%s), %d not in the model (%s)",
				o.topic, len(got), len(dup), head(dup), len(unexpected), head(unexpected))
		}
		t.Logf("%s: %d of %d records so far, none duplicated or unexpected", o.topic, len(got), len(o.want))
	}
}

// TestExactlyOnceWithUserState runs example.fraud and example.session at
// parallelism 2 on three workers while 24,000 transactions and 24,000
// clicks stream in (two thirds of them), SIGKILLing a worker that runs
// one of them three times, each after a checkpoint of the current attempt
// completed, and starting a replacement each time. Then it stops the job
// with a savepoint, submits it from the savepoint at parallelism 3 and
// streams the rest, with a last click per partition far ahead in event
// time so that every session of the input closes, and kills a worker once
// more. The alerts and sessions
// a read_committed reader sees are exactly the models': nothing lost (state
// and timers restored after each kill and across the rescale), nothing
// duplicated (the sinks' transactions), nothing else (a session split or
// merged wrongly, an alert from lost state).
func TestExactlyOnceWithUserState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a weir binary and runs a multi-process cluster")
	}
	const (
		events = 24_000
		kills  = 3
	)
	seed := uint64(5)
	if v := os.Getenv(SeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number", SeedEnv, v)
		}
		seed = n
	}
	t.Logf("seed %d (%s=%d replays it)", seed, SeedEnv, seed)
	bin := examplesBinary(t)
	began := time.Now()
	c := proc.StartCluster(t, bin, 3, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range []string{"txns", "clicks"} {
		if err := kafka.EnsureTopic(ctx, []string{c.KafkaAddr}, topic, partitions); err != nil {
			t.Fatal(err)
		}
	}
	txns, clicks := generate(seed, events)
	// Far ahead, a click on every partition: the watermark passes every
	// session's end. Their own sessions stay open.
	last := slices.MaxFunc(clicks, func(a, b click) int { return int(a.TS - b.TS) }).TS
	var sentinels []click
	for p := range int32(partitions) {
		sentinels = append(sentinels, click{User: fmt.Sprintf("sentinel-%d", p), TS: last + 10*gap, part: p})
	}
	outs := []output{
		{"alerts", decodeAlert, fraudModel(txns)},
		{"sessions", decodeSession, sessionModel(clicks)},
	}
	t.Logf("input: %d transactions, %d clicks; the models: %d alerts, %d sessions", len(txns), len(clicks), len(outs[0].want), len(outs[1].want))
	split := events * 2 / 3
	spec := jobSpec(t, c.KafkaAddr)

	// Part one at parallelism 2, with worker kills while it streams in.
	id := c.Submit(spec, "-p", "2")
	c.WaitRunning(id, 1, time.Minute)
	p := newProducer(t, c.KafkaAddr)
	p.start(records(txns[:split], clicks[:split]), 400)
	next := 4
	for k := range kills {
		j := c.Job(id)
		chk := c.WaitCheckpoint(id, j.Attempt, 0, 90*time.Second)
		node := []string{"sessions", "fraud"}[k%2]
		ws := nodeWorkers(c, id, node)
		if len(ws) == 0 {
			t.Fatalf("no worker runs %s", node)
		}
		t.Logf("kill %d at +%s: SIGKILL %s (runs %s) in attempt %d, checkpoint %d completed", k+1,
			time.Since(began).Round(time.Millisecond), ws[0], node, j.Attempt, chk.ID)
		c.Workers[ws[0]].Kill()
		c.StartWorker(fmt.Sprintf("worker-%d", next), 4, nil)
		next++
		c.WaitRunning(id, j.Attempt+1, 90*time.Second)
	}
	p.wait(t)
	c.WaitCheckpoint(id, c.Job(id).Attempt, 0, 90*time.Second)
	if j := c.Job(id); j.Restarts < kills {
		t.Fatalf("job after %d kills: %d restarts", kills, j.Restarts)
	}
	checkSoFar(t, c.KafkaAddr, outs)

	// Stop with a savepoint; resume at parallelism 3.
	out, code := c.Weir("savepoint", id, "--stop", "--wait")
	if code != 0 {
		t.Fatalf("savepoint --stop --wait: exit %d\n%s", code, out)
	}
	uri := strings.TrimSpace(out)
	if j := c.WaitEnded(id, time.Minute); j.State != "FINISHED" {
		t.Fatalf("job stopped with a savepoint: %s %s", j.State, j.FailureCause)
	}
	t.Logf("stopped at +%s with savepoint %s after %d restarts", time.Since(began).Round(time.Millisecond), uri, c.Job(id).Restarts)
	checkSoFar(t, c.KafkaAddr, outs)
	id2 := c.Submit(spec, "--from-savepoint", uri, "-p", "3")
	j := c.WaitRunning(id2, 1, time.Minute)
	for _, v := range j.Vertices {
		if v.Parallelism != 3 {
			t.Fatalf("restored job: vertex %s at parallelism %d, want 3", v.ID, v.Parallelism)
		}
	}
	p.start(records(txns[split:], append(clicks[split:], sentinels...)), 400)
	// One more kill: the restore of state and timers written at the new
	// parallelism.
	chk := c.WaitCheckpoint(id2, 1, 0, 90*time.Second)
	ws := nodeWorkers(c, id2, "sessions")
	if len(ws) == 0 {
		t.Fatal("no worker runs sessions")
	}
	t.Logf("kill %d at +%s: SIGKILL %s (runs sessions) at parallelism 3, checkpoint %d completed", kills+1,
		time.Since(began).Round(time.Millisecond), ws[0], chk.ID)
	c.Workers[ws[0]].Kill()
	c.StartWorker(fmt.Sprintf("worker-%d", next), 4, nil)
	c.WaitRunning(id2, 2, 90*time.Second)
	p.wait(t)

	// Every alert and session arrives, then, a checkpoint later, nothing
	// more has.
	for _, o := range outs {
		var got []string
		proc.Eventually(t, 2*time.Minute, func() (bool, string) {
			got = readCommitted(t, c.KafkaAddr, o.topic, o.decode)
			lost, dup, unexpected := diff(got, o.want)
			if len(dup) > 0 || len(unexpected) > 0 {
				t.Fatalf("%s: %d duplicated (%s), %d not in the model (%s)", o.topic, len(dup), head(dup), len(unexpected), head(unexpected))
			}
			return len(lost) == 0, fmt.Sprintf("%s: %d of %d records, lost so far: %s", o.topic, len(got), len(o.want), head(lost))
		})
	}
	var newest int64
	for _, h := range c.Checkpoints(id2).History {
		newest = max(newest, h.ID)
	}
	c.WaitCheckpoint(id2, c.Job(id2).Attempt, newest, time.Minute)
	for _, o := range outs {
		got := readCommitted(t, c.KafkaAddr, o.topic, o.decode)
		if lost, dup, unexpected := diff(got, o.want); len(lost)+len(dup)+len(unexpected) > 0 {
			t.Fatalf("%s: %d lost (%s), %d duplicated (%s), %d unexpected (%s)", o.topic,
				len(lost), head(lost), len(dup), head(dup), len(unexpected), head(unexpected))
		}
		t.Logf("%s: %d records read_committed, exactly the model's", o.topic, len(got))
	}
	if j := c.Job(id2); j.State != "RUNNING" {
		t.Fatalf("the restored job is %s: %s", j.State, j.FailureCause)
	}
	t.Logf("done at +%s", time.Since(began).Round(time.Millisecond))
}

// nodeWorkers returns the workers running the subtasks of node.
func nodeWorkers(c *proc.Cluster, id, node string) []string {
	var ws []string
	for _, v := range c.Job(id).Vertices {
		if !slices.Contains(v.Nodes, node) {
			continue
		}
		for _, s := range v.Subtasks {
			if s.Worker != "" && !slices.Contains(ws, s.Worker) {
				ws = append(ws, s.Worker)
			}
		}
	}
	return ws
}
