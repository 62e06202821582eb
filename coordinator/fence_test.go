package coordinator_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/ha"
	"github.com/weir-stream/weir/coordinator/ha/devetcd"
	"github.com/weir-stream/weir/internal/netproxy"
)

// TestDeposedLeaderCannotCompleteOrNotify runs a coordinator fenced by an
// etcd leadership whose connection to etcd goes through a proxy. With the
// connection up, checkpoints complete and are notified. Once the proxy cuts
// it (a partition) and a standby takes the leadership, a checkpoint whose
// every subtask acknowledged is not committed (no _metadata) and its
// completion is not notified, and no further checkpoint is triggered.
func TestDeposedLeaderCannotCompleteOrNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	e, err := devetcd.Start(devetcd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ctx := context.Background()
	p := netproxy.New(t, e.Endpoint())
	cut, err := ha.Connect(ctx, ha.Config{Endpoints: []string{p.Addr()}, TTL: time.Second, OpTimeout: time.Second, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cut.Close() })
	leader, err := cut.Campaign(ctx, ha.Info{ID: "old"})
	if err != nil {
		t.Fatal(err)
	}

	fc, _, cl, clk := newFakeCluster(t, 2, func(cfg *coordinator.Config) {
		cfg.Fence = leader
		cfg.StorageTimeout = 2 * time.Second
	})
	id, err := cl.Submit(ctx, jobSpecWith("fenced", "checkpoint: {interval: 1s, timeout: 1h, tolerable_failures: 100}\nrestart: {strategy: none}\n", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, cl, id, "RUNNING")
	advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[1] == 2 }, "checkpoint 1")
	fc.ackAll(id, 1, false)
	waitCheckpoint(t, cl, id, 1, "COMPLETED")
	eventually(t, 5*time.Second, func() bool { return fc.count(id, 1, "notify") == 3 }, "checkpoint 1 notified")
	if n, err := leader.LastID(ctx, id); err != nil || n < 1 {
		t.Fatalf("etcd records checkpoint id %d (%v)", n, err)
	}

	advanceUntil(t, clk, time.Second, func() bool { return fc.triggers(id)[2] == 2 }, "checkpoint 2")
	// Partition: the leader loses etcd, a standby is elected.
	p.Cut(true)
	standby, err := ha.Connect(ctx, ha.Config{Endpoints: []string{e.Endpoint()}, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standby.Close() })
	if _, err := standby.Campaign(ctx, ha.Info{ID: "new"}); err != nil {
		t.Fatal(err)
	}
	fc.ackAll(id, 2, false)
	waitCheckpoint(t, cl, id, 2, "FAILED")
	if exists(filepath.Join(fc.root, id, "chk-2", "_metadata")) {
		t.Fatal("the deposed leader committed checkpoint 2")
	}
	if n := fc.count(id, 2, "notify"); n != 0 {
		t.Fatalf("the deposed leader notified checkpoint 2 to %d subtasks", n)
	}
	// Later triggers are refused by the fence before reaching any source.
	before := len(fc.triggers(id))
	for range 5 {
		clk.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	if after := len(fc.triggers(id)); after != before {
		t.Fatalf("the deposed leader triggered %d more checkpoints", after-before)
	}
}
