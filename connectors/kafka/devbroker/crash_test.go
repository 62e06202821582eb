package devbroker

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-stream/weir/internal/netaddr"
)

// The crash tests run the broker in a child process (this test binary,
// running TestCrashChild) so that a SIGKILL ends it the way it ends
// `weir dev kafka`: nothing is saved on the way out.
const (
	childDirEnv  = "WEIR_DEVBROKER_CHILD_DIR"
	childAddrEnv = "WEIR_DEVBROKER_CHILD_ADDR"
)

// TestCrashChild is the broker process of the crash tests; it does nothing
// unless started by one.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("the broker process of the crash tests")
	}
	b, err := Start(Config{Addr: os.Getenv(childAddrEnv), DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = b
	select {} // until SIGKILLed
}

type child struct {
	t   *testing.T
	cmd *exec.Cmd
}

func startChild(t *testing.T, dir, addr string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childAddrEnv+"="+addr)
	log, err := os.OpenFile(filepath.Join(t.TempDir(), "broker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd}
	t.Cleanup(c.kill)
	eventually(t, 30*time.Second, func() (bool, string) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, fmt.Sprintf("broker on %s: %v", addr, err)
		}
		conn.Close()
		return true, ""
	})
	return c
}

// kill SIGKILLs the broker and waits until it has exited.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produce writes values from..to-1 to topic, one record each, with a client
// that auto-creates the topic.
func produce(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// readAll reads every record of topic from the start and checks that the
// values are exactly 0..n-1, each once.
func readAll(t *testing.T, addr, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[int]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: read %d distinct of %d records", topic, len(seen), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("%s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil || v < 0 || v >= n || seen[v] || string(r.Key) != strconv.Itoa(v%7) {
				t.Fatalf("%s/%d offset %d: unexpected record key %q value %q", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
			}
			seen[v] = true
		})
	}
}

// TestAutoCreatedTopicSurvivesCrash: a topic auto-created by a producer's
// Metadata request, and one created with CreateTopics, keep their data
// across a SIGKILL of the broker, and writes after the restart land after
// the old data (before the fix the auto-created topic was gone after the
// crash, and created again it appended to the old files at wrong
// positions, so a reader got the old bytes or garbage).
func TestAutoCreatedTopicSurvivesCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	dir := t.TempDir()
	addr, err := netaddr.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}

	b := startChild(t, dir, addr)
	createTopic(t, addr, "created")
	produce(t, addr, "auto", 0, 500)
	produce(t, addr, "created", 0, 500)
	b.kill()

	b = startChild(t, dir, addr)
	readAll(t, addr, "auto", 500)
	readAll(t, addr, "created", 500)
	produce(t, addr, "auto", 500, 1000)
	readAll(t, addr, "auto", 1000)
	b.kill()

	startChild(t, dir, addr)
	readAll(t, addr, "auto", 1000)
	readAll(t, addr, "created", 500)
}

// TestCrashAbortedTxnEndsWithMarker: a transaction open when the broker is
// SIGKILLed is aborted on restart with abort markers, so the producer's
// later transactions under the same transactional id (same producer id)
// are visible to read_committed readers. Before the fix kfake aborted it
// without a marker, and a reader skipped the committed transaction after it
// too: this test read 100 of 200 records and timed out.
func TestCrashAbortedTxnEndsWithMarker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	dir := t.TempDir()
	addr, err := netaddr.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	b := startChild(t, dir, addr)
	cl := txnClient(t, addr)
	txn(t, cl, 0, 100, true)
	txn(t, cl, 1000, 1100, false) // open at the crash
	b.kill()
	cl.Close()

	b = startChild(t, dir, addr)
	cl = txnClient(t, addr)
	txn(t, cl, 100, 200, true)
	cl.Close()
	readCommitted(t, addr, "txn", 200)
	b.kill()

	startChild(t, dir, addr)
	readCommitted(t, addr, "txn", 200)
}

func txnClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("txn"),
		kgo.TransactionalID("tx"), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// txn writes values from..to-1 in one transaction and commits it, or leaves
// it open.
func txn(t *testing.T, cl *kgo.Client, from, to int, commit bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	for i := from; i < to; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce in a transaction: %v", err)
	}
	if commit {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
}

// readCommitted reads topic from the start with read_committed isolation
// and checks that the values are exactly 0..n-1, each once.
func readCommitted(t *testing.T, addr, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[int]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: read %d distinct of %d committed records", topic, len(seen), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("%s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			v, err := strconv.Atoi(string(r.Value))
			if err != nil || v < 0 || v >= n || seen[v] {
				t.Fatalf("%s/%d offset %d: unexpected record %q (aborted, or twice)", r.Topic, r.Partition, r.Offset, r.Value)
			}
			seen[v] = true
		})
	}
}

// FuzzScanSegment: any segment bytes scan without panicking.
func FuzzScanSegment(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		scanSegment(raw, map[int64]int16{})
	})
}

func createTopic(t *testing.T, addr, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 3, -1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s: %v %+v", topic, err, resp)
	}
}

// TestOrphanedPartitionsSetAside: partition files of a topic missing from
// the topic list (what a crash of the broker before the fix left behind)
// are moved aside at start, so the topic created again starts empty
// instead of appending to them and serving their bytes at wrong positions.
func TestOrphanedPartitionsSetAside(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct{ path, data string }{
		{"topics.json", `{"version":1,"topics":[]}`},
		{"partitions/lost-0/0.dat", "bytes of an older broker's batches"},
		{"partitions/lost-0/0.idx", "index"},
	} {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Start(Config{Addr: "127.0.0.1:0", DataDir: dir, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := os.Stat(filepath.Join(dir, orphanDir, "lost-0", "0.dat")); err != nil {
		t.Fatalf("orphaned partition not set aside: %v", err)
	}
	produce(t, b.Addr(), "lost", 0, 50)
	readAll(t, b.Addr(), "lost", 50)
}

func TestPartitionTopic(t *testing.T) {
	for name, want := range map[string]string{"a-0": "a", "my-topic-12": "my-topic", "a%2Fb-3": "a/b"} {
		if got, ok := partitionTopic(name); !ok || got != want {
			t.Errorf("%q: %q %v, want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"nodash", "-1", "a-", "a-x", "a%zz-1"} {
		if got, ok := partitionTopic(name); ok {
			t.Errorf("%q: %q, want not a partition directory", name, got)
		}
	}
}

// FuzzPartitionTopic: any directory name parses without panicking, and a
// name made from a topic parses back to it.
func FuzzPartitionTopic(f *testing.F) {
	for _, s := range []string{"a-0", "my-topic-12", "a%2Fb-3", "-1", "a-", "%-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		topic, ok := partitionTopic(name)
		if !ok {
			return
		}
		if back, ok := partitionTopic(url.PathEscape(topic) + "-0"); !ok || back != topic {
			t.Fatalf("%q: topic %q does not round-trip (%q %v)", name, topic, back, ok)
		}
	})
}
