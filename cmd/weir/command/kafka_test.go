package command

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/connectors/kafka/devbroker"
)

// startBroker runs the dev broker in this process on a free port, with
// topics created empty.
func startBroker(t *testing.T, topics ...string) string {
	t.Helper()
	b, err := devbroker.Start(devbroker.Config{Addr: "127.0.0.1:0", Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

// endOffsets returns the end offset (the record count, with no
// transactions) of every partition of topic.
func endOffsets(t *testing.T, broker, topic string) map[int32]int64 {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	cl, err := sarama.NewClient([]string{broker}, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	parts, err := cl.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	for _, p := range parts {
		end, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = end
	}
	return out
}

// produce writes values to topic, one record each, round robin.
func produce(t *testing.T, broker, topic string, values ...[]byte) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer([]string{broker}, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(values))
	for i, v := range values {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(v)}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

func outputJSON(r accesslog.OutputRecord) []byte {
	return fmt.Appendf(nil, `{"ip": %q, "window_start": %d, "window_end": %d, "count": %d, "bytes": %d}`,
		r.IP, r.WindowStart, r.WindowEnd, r.Count, r.Bytes)
}

func TestLoadgenWritesEveryEventToItsPartition(t *testing.T) {
	broker := startBroker(t)
	const events, seed, partitions = 3000, 5, 3
	r := mustRun(t, 0, "loadgen", "access-log", "--brokers", broker, "--topic", "in",
		"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", strconv.Itoa(partitions))
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("wrote %d events to in in ", events)) {
		t.Errorf("loadgen output: %s", r)
	}

	// The topic was created with --partitions partitions, and each holds
	// exactly the events the generator assigns to it.
	want := map[int32]int64{}
	err := accesslog.Generate(accesslog.Config{Events: events, Seed: seed, Partitions: partitions},
		func(_ int64, p int32, _ accesslog.Event) error { want[p]++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	got := endOffsets(t, broker, "in")
	if len(got) != partitions {
		t.Fatalf("topic has %d partitions, want %d", len(got), partitions)
	}
	var total int64
	for p, n := range got {
		total += n
		if n != want[p] {
			t.Errorf("partition %d holds %d events, the generator assigns it %d", p, n, want[p])
		}
	}
	if total != events {
		t.Errorf("topic holds %d events, want %d", total, events)
	}

	// An existing topic with fewer partitions than asked for is an error.
	r = mustRun(t, 1, "loadgen", "access-log", "--brokers", broker, "--topic", "in",
		"--events", "10", "--partitions", "8")
	if !strings.Contains(r.stderr, "topic in has 3 partitions, the log needs 8") {
		t.Errorf("partition mismatch: %s", r)
	}
}

func TestLoadgenUnboundedStopsOnInterrupt(t *testing.T) {
	broker := startBroker(t)
	done := make(chan result, 1)
	go func() {
		var out, errb strings.Builder
		code := execute([]string{"loadgen", "access-log", "--brokers", broker, "--topic", "in",
			"--events", "0", "--rate", "2000"}, &out, &errb)
		done <- result{code: code, stdout: out.String(), stderr: errb.String()}
	}()
	// Records on the topic mean execute is past signal.NotifyContext, so the
	// interrupt goes to the command, not to the test binary.
	eventually(t, 20*time.Second, func() (bool, string) {
		var n int64
		for _, v := range endOffsetsQuiet(broker, "in") {
			n += v
		}
		return n > 0, fmt.Sprintf("%d records", n)
	})
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != 0 || !strings.HasPrefix(r.stdout, "wrote ") {
			t.Fatalf("loadgen --events 0 after Ctrl-C: want exit 0 and a summary, got %s", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("loadgen --events 0 did not stop on SIGINT")
	}
}

// endOffsetsQuiet is endOffsets for polling: errors (e.g. the topic does
// not exist yet) read as no records.
func endOffsetsQuiet(broker, topic string) map[int32]int64 {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Metadata.AllowAutoTopicCreation = false
	cl, err := sarama.NewClient([]string{broker}, sc)
	if err != nil {
		return nil
	}
	defer cl.Close()
	parts, err := cl.Partitions(topic)
	if err != nil {
		return nil
	}
	out := map[int32]int64{}
	for _, p := range parts {
		if end, err := cl.GetOffset(topic, p, sarama.OffsetNewest); err == nil {
			out[p] = end
		}
	}
	return out
}

func TestLoadgenBrokerUnreachable(t *testing.T) {
	addr := deadAddr(t)
	r := mustRun(t, 1, "loadgen", "access-log", "--brokers", addr, "--events", "10")
	// Named once, without the package that failed (it said "loadgen to
	// access-log on ADDR: accesslog: connect to [ADDR]: …").
	if !strings.HasPrefix(r.stderr, "error: loadgen: connect to Kafka brokers "+addr+": ") || strings.Contains(r.stderr, "accesslog:") {
		t.Errorf("want a message naming %s once, no package name: %s", addr, r)
	}
}

func TestVerify(t *testing.T) {
	broker := startBroker(t, "empty", "exact", "dup", "dup-ok", "dup-wrong")
	const events, seed, partitions = 5000, 3, 2
	flags := func(topic string, extra ...string) []string {
		return append([]string{"verify", "ip-visits", "--brokers", broker, "--topic", topic,
			"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", strconv.Itoa(partitions),
			"--idle", "300ms"}, extra...)
	}
	cfg := accesslog.Config{Events: events, Seed: seed, Partitions: partitions}
	model := accesslog.Expected(cfg, time.Minute, 5*time.Second)
	due := model.Records(true)
	if len(due) == 0 {
		t.Fatal("the model has no due windows")
	}

	// Nothing in the output topic: every due window is lost.
	r := mustRun(t, 1, flags("empty")...)
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("matched 0  lost %d  duplicated 0", len(due))) ||
		!strings.Contains(r.stdout, "  lost window ip=") {
		t.Errorf("empty output: want every window lost, with examples\n%s", r)
	}
	if !strings.Contains(r.stderr, errMismatch.Error()) {
		t.Errorf("empty output: want %q on stderr\n%s", errMismatch, r)
	}
	var res accesslog.Report
	r = mustRun(t, 1, flags("empty", "-o", "json")...)
	decode(t, r, &res)
	if res.OK || res.Lost != len(due) || res.Matched != 0 || len(res.Examples) == 0 {
		t.Errorf("verify -o json on empty output = %+v", res)
	}
	for _, key := range []string{`"ok"`, `"matched"`, `"lost"`, `"duplicated"`, `"wrong"`, `"unexpected"`, `"pending"`, `"late_counted"`, `"malformed"`, `"examples"`} {
		if !strings.Contains(r.stdout, key) {
			t.Errorf("verify -o json lacks %s:\n%s", key, r.stdout)
		}
	}

	// Exactly the model's windows: success.
	var values [][]byte
	for _, rec := range due {
		values = append(values, outputJSON(rec))
	}
	produce(t, broker, "exact", values...)
	r = mustRun(t, 0, flags("exact")...)
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("matched %d  lost 0  duplicated 0  wrong 0  unexpected 0", len(due))) {
		t.Errorf("exact output: %s", r)
	}
	res = accesslog.Report{}
	decode(t, mustRun(t, 0, flags("exact", "--output", "json")...), &res)
	if !res.OK || res.Matched != len(due) || res.Lost+res.Duplicated+res.Wrong+res.Unexpected != 0 {
		t.Errorf("verify -o json on exact output = %+v", res)
	}

	// One window twice and one malformed record.
	produce(t, broker, "dup", append(values, values[0], []byte("not json"))...)
	r = mustRun(t, 1, flags("dup")...)
	if !strings.Contains(r.stdout, "duplicated 1") || !strings.Contains(r.stdout, "malformed: partition ") {
		t.Errorf("duplicate and malformed output: %s", r)
	}
	res = accesslog.Report{}
	decode(t, mustRun(t, 1, flags("dup", "-o", "json")...), &res)
	if res.OK || res.Duplicated != 1 || res.Wrong != 1 || len(res.Malformed) != 1 {
		t.Errorf("verify -o json on duplicate and malformed output = %+v", res)
	}

	// --allow-duplicates: the extra copy is counted and reported but passes;
	// a malformed record, a lost window or a duplicate with another count
	// still fails.
	produce(t, broker, "dup-ok", append(values, values[0])...)
	r = mustRun(t, 0, flags("dup-ok", "--allow-duplicates")...)
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("matched %d  lost 0  duplicated 1  wrong 0", len(due)-1)) ||
		!strings.Contains(r.stdout, "emitted 2 times") {
		t.Errorf("--allow-duplicates on a duplicated window: %s", r)
	}
	res = accesslog.Report{}
	decode(t, mustRun(t, 0, flags("dup-ok", "--allow-duplicates", "-o", "json")...), &res)
	if !res.OK || res.Duplicated != 1 || res.Wrong+res.Lost+res.Unexpected != 0 {
		t.Errorf("verify --allow-duplicates -o json on a duplicated window = %+v", res)
	}
	mustRun(t, 1, flags("dup-ok")...)
	mustRun(t, 1, flags("dup", "--allow-duplicates")...)
	mustRun(t, 1, flags("empty", "--allow-duplicates")...)
	wrongCopy := due[0]
	wrongCopy.Count++
	produce(t, broker, "dup-wrong", append(values, outputJSON(wrongCopy))...)
	res = accesslog.Report{}
	decode(t, mustRun(t, 1, flags("dup-wrong", "--allow-duplicates", "-o", "json")...), &res)
	if res.OK || res.Duplicated != 1 || res.Wrong != 1 {
		t.Errorf("verify --allow-duplicates on a duplicate with another count = %+v", res)
	}

	// Other windows than the job's: the same records no longer match.
	mustRun(t, 1, flags("exact", "--window", "2m")...)
	mustRun(t, 1, flags("exact", "--seed", "4")...)

	r = mustRun(t, 1, flags("no-such-topic")...)
	if !strings.Contains(r.stderr, "no-such-topic") {
		t.Errorf("missing output topic: want a message naming it: %s", r)
	}
	mustRun(t, 2, flags("exact", "-o", "yaml")...)
}

// syncBuffer is a bytes.Buffer a verb writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// verify --wait reads again while the output is incomplete, saying how far
// it got on stderr with --progress, and passes once the rest arrives;
// without --progress (and no terminal) stderr gets no progress lines.
func TestVerifyWaitsForTheOutput(t *testing.T) {
	broker := startBroker(t, "growing", "short")
	const events, seed, partitions = 3000, 5, 2
	cfg := accesslog.Config{Events: events, Seed: seed, Partitions: partitions}
	due := accesslog.Expected(cfg, time.Minute, 5*time.Second).Records(true)
	if len(due) < 2 {
		t.Fatalf("the model has %d due windows", len(due))
	}
	var values [][]byte
	for _, rec := range due {
		values = append(values, outputJSON(rec))
	}
	half := len(values) / 2
	produce(t, broker, "growing", values[:half]...)
	args := func(topic string, extra ...string) []string {
		return append([]string{"verify", "ip-visits", "--brokers", broker, "--topic", topic,
			"--events", strconv.Itoa(events), "--seed", strconv.Itoa(seed), "--partitions", strconv.Itoa(partitions),
			"--idle", "200ms"}, extra...)
	}

	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- execute(args("growing", "--wait", "2m", "--progress"), &stdout, &stderr) }()
	want := fmt.Sprintf("verify: matched %d of %d windows, lost %d (attempt ", half, len(due), len(due)-half)
	eventually(t, time.Minute, func() (bool, string) { return strings.Contains(stderr.String(), want), stderr.String() })
	produce(t, broker, "growing", values[half:]...)
	select {
	case code := <-done:
		if code != 0 || !strings.HasPrefix(stdout.String(), fmt.Sprintf("matched %d  lost 0", len(due))) {
			t.Fatalf("verify --wait: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("verify --wait did not return after the output was complete")
	}

	// The time runs out on output that stays short: exit 1 with the last
	// read's figures; no progress lines without --progress on a pipe.
	produce(t, broker, "short", values[:half]...)
	r := mustRun(t, 1, args("short", "--wait", "500ms")...)
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("matched %d  lost %d", half, len(due)-half)) || strings.Contains(r.stderr, "verify: matched") {
		t.Fatalf("verify --wait on short output: %s", r)
	}
	mustRun(t, 2, args("short", "--wait", "-1s")...)
}

// loadgen --progress reports the events written on stderr; stdout keeps
// only the final line, and without --progress (stderr not a terminal)
// stderr stays empty.
func TestLoadgenProgress(t *testing.T) {
	broker := startBroker(t)
	r := mustRun(t, 0, "loadgen", "access-log", "--brokers", broker, "--topic", "p", "--events", "3000", "--progress")
	if !strings.Contains(r.stderr, "\rloadgen: 3000 of 3000 events to p (") || !strings.HasPrefix(r.stdout, "wrote 3000 events to p in ") {
		t.Fatalf("loadgen --progress: %s", r)
	}
	r = mustRun(t, 0, "loadgen", "access-log", "--brokers", broker, "--topic", "q", "--events", "3000")
	if r.stderr != "" {
		t.Fatalf("loadgen without --progress wrote to stderr: %s", r)
	}
}
