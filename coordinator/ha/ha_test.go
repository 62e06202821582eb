package ha_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/ha"
	"github.com/weir-stream/weir/coordinator/ha/devetcd"
	"github.com/weir-stream/weir/coordinator/jobstore"
	"github.com/weir-stream/weir/internal/netproxy"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func startEtcd(t *testing.T) *devetcd.Server {
	t.Helper()
	s, err := devetcd.Start(devetcd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func connect(t *testing.T, endpoint string, ttl time.Duration) *ha.Client {
	t.Helper()
	c, err := ha.Connect(context.Background(), ha.Config{Endpoints: []string{endpoint}, TTL: ttl, OpTimeout: 2 * time.Second, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestElectionAndResign(t *testing.T) {
	e := startEtcd(t)
	ctx := context.Background()
	a, b := connect(t, e.Endpoint(), 2*time.Second), connect(t, e.Endpoint(), 2*time.Second)
	if _, ok, err := a.CurrentLeader(ctx); err != nil || ok {
		t.Fatalf("a leader before any campaign: %v %v", ok, err)
	}
	la, err := a.Campaign(ctx, ha.Info{ID: "a", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan *ha.Leader, 1)
	go func() {
		lb, err := b.Campaign(ctx, ha.Info{ID: "b", HTTPAddr: "127.0.0.1:2"})
		if err != nil {
			t.Error(err)
		}
		won <- lb
	}()
	if in, ok, err := b.CurrentLeader(ctx); err != nil || !ok || in.ID != "a" || in.HTTPAddr != "127.0.0.1:1" {
		t.Fatalf("leader %+v %v %v", in, ok, err)
	}
	select {
	case <-won:
		t.Fatal("b leads while a does")
	case <-time.After(300 * time.Millisecond):
	}
	if err := la.Guard(ctx); err != nil {
		t.Fatal(err)
	}
	if err := la.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	var lb *ha.Leader
	select {
	case lb = <-won:
	case <-time.After(10 * time.Second):
		t.Fatal("b did not take over after a resigned")
	}
	if lb.Token() <= la.Token() {
		t.Fatalf("tokens %d then %d", la.Token(), lb.Token())
	}
	if err := la.Guard(ctx); !errors.Is(err, ha.ErrNotLeader) {
		t.Fatalf("a resigned leader passes its guard: %v", err)
	}
	if in, ok, _ := a.CurrentLeader(ctx); !ok || in.ID != "b" {
		t.Fatalf("leader %+v", in)
	}
}

func TestCheckpointIDsOnlyGrow(t *testing.T) {
	e := startEtcd(t)
	ctx := context.Background()
	l, err := connect(t, e.Endpoint(), 2*time.Second).Campaign(ctx, ha.Info{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.LastID(ctx, "j1"); err != nil || n != 0 {
		t.Fatalf("%d %v", n, err)
	}
	for _, n := range []int64{1, 2, 5} {
		if err := l.Trigger(ctx, "j1", n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int64{5, 3} {
		if err := l.Trigger(ctx, "j1", n); err == nil || !strings.Contains(err.Error(), "not above the recorded 5") {
			t.Fatalf("trigger %d: %v", n, err)
		}
	}
	if n, _ := l.LastID(ctx, "j1"); n != 5 {
		t.Fatalf("last id %d", n)
	}
	// The leader remembers the id it recorded; when the stored one moved
	// under it (never while it leads, but the cache must not be trusted
	// blindly), it reads it again.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "/weir/checkpoints/j1/last-id", "10"); err != nil {
		t.Fatal(err)
	}
	if err := l.Trigger(ctx, "j1", 7); err == nil || !strings.Contains(err.Error(), "not above the recorded 10") {
		t.Fatalf("trigger 7 over a stored 10: %v", err)
	}
	if err := l.Trigger(ctx, "j1", 11); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/weir/checkpoints/j1/last-id", "5"); err != nil {
		t.Fatal(err)
	}
	if err := l.Trigger(ctx, "j1", 12); err != nil {
		t.Fatalf("trigger 12 over a stored 5 (cache 11): %v", err)
	}
	if n, _ := l.LastID(ctx, "j1"); n != 12 {
		t.Fatalf("last id %d, want 12", n)
	}
	if err := l.Completed(ctx, "j1", 5, "file:///x/chk-5"); err != nil {
		t.Fatal(err)
	}
	if err := l.Forget(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.LastID(ctx, "j1"); n != 0 {
		t.Fatalf("forgotten job still has id %d", n)
	}
}

// TestDeposedLeaderIsFenced cuts the leader's connection to etcd with a
// proxy: a standby takes over once the lease expires, and the old leader
// can then neither trigger, complete, nor notify a checkpoint, nor write
// the job store — not while cut off, and not after its connection is back.
func TestDeposedLeaderIsFenced(t *testing.T) {
	e := startEtcd(t)
	ctx := context.Background()
	p := netproxy.New(t, e.Endpoint())
	old := connect(t, p.Addr(), 1*time.Second)
	lo, err := old.Campaign(ctx, ha.Info{ID: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if err := lo.Trigger(ctx, "j", 1); err != nil {
		t.Fatal(err)
	}
	specs := openStorage(t)
	if err := ha.NewJobStore(lo, specs).Put(ctx, record("aaaa")); err != nil {
		t.Fatal(err)
	}

	standby := connect(t, e.Endpoint(), 1*time.Second)
	won := make(chan *ha.Leader, 1)
	go func() {
		l, err := standby.Campaign(ctx, ha.Info{ID: "new"})
		if err != nil {
			t.Error(err)
		}
		won <- l
	}()
	p.Cut(true)
	// Cut off, the old leader's fenced steps fail (they cannot reach etcd).
	if err := lo.Guard(ctx); err == nil {
		t.Fatal("a leader cut off from etcd passed its guard")
	}
	// The standby wins when etcd expires the old leader's 1s lease: an
	// event; the wait is only a backstop, which 20s was not under load
	// 10-16 (etcd's lessor and the campaign's watch run late there).
	var ln *ha.Leader
	select {
	case ln = <-won:
	case <-time.After(2 * time.Minute):
		t.Fatal("the standby did not take over")
	}
	eventually(t, 2*time.Minute, func() bool {
		select {
		case <-lo.Lost():
			return true
		default:
			return false
		}
	}, "the old leader to notice it lost its lease")
	if err := ln.Trigger(ctx, "j", 2); err != nil {
		t.Fatal(err)
	}

	p.Cut(false)
	for name, step := range map[string]func() error{
		"guard (before commit, before notify)": func() error { return lo.Guard(ctx) },
		"trigger":                              func() error { return lo.Trigger(ctx, "j", 3) },
		"completed":                            func() error { return lo.Completed(ctx, "j", 2, "file:///x") },
		"job store":                            func() error { return ha.NewJobStore(lo, specs).Put(ctx, record("bbbb")) },
	} {
		if err := step(); !errors.Is(err, ha.ErrNotLeader) {
			t.Errorf("%s by the deposed leader: %v", name, err)
		}
	}
	if n, _ := ln.LastID(ctx, "j"); n != 2 {
		t.Fatalf("last id %d after the deposed leader tried 3", n)
	}
	recs, err := ha.NewJobStore(ln, specs).List(ctx)
	if err != nil || len(recs) != 1 || recs[0].ID != "aaaa" || string(recs[0].Spec) != "name: x\n" {
		t.Fatalf("job store %+v %v", recs, err)
	}
}

func TestJobStore(t *testing.T) {
	e := startEtcd(t)
	ctx := context.Background()
	l, err := connect(t, e.Endpoint(), 2*time.Second).Campaign(ctx, ha.Info{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	specs := openStorage(t)
	s := ha.NewJobStore(l, specs)
	r := record("aaaa")
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Desired, r.State = jobstore.Ended, "FINISHED"
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, record("bbbb")); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx)
	if err != nil || len(got) != 2 || got[0].State != "FINISHED" || string(got[1].Spec) != "name: x\n" {
		t.Fatalf("%+v %v", got, err)
	}
	// A missing spec file is reported with the job, the rest still listed.
	if err := specs.DeleteAll(ctx, "_jobs/bbbb/spec.yaml"); err != nil {
		t.Fatal(err)
	}
	got, err = s.List(ctx)
	var le *jobstore.ListError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "job bbbb: spec") || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	if err := s.Delete(ctx, "aaaa"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.List(ctx); len(got) != 0 {
		t.Fatalf("after delete: %+v", got)
	}
	if err := s.Put(ctx, &jobstore.Record{ID: "x/y", Spec: []byte("a"), Desired: jobstore.Run}); err == nil {
		t.Fatal("a bad id was stored")
	}
}

func TestConnectErrors(t *testing.T) {
	if _, err := ha.Connect(context.Background(), ha.Config{}); err == nil || !strings.Contains(err.Error(), "no etcd endpoints") {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err := ha.Connect(context.Background(), ha.Config{Endpoints: []string{addr}, DialTimeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("a dead etcd: %v", err)
	}
}

func record(id string) *jobstore.Record {
	return &jobstore.Record{ID: id, Name: "x", Spec: []byte("name: x\n"), SubmittedAt: time.Now(), Desired: jobstore.Run}
}

func openStorage(t *testing.T) checkpoint.Storage {
	t.Helper()
	st, err := checkpoint.OpenStorage("file://" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
