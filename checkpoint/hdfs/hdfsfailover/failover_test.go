package hdfsfailover_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	_ "github.com/weir-stream/weir/checkpoint/hdfs" // registers hdfs://
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/cluster"
	"github.com/weir-stream/weir/internal/hdfstest"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// visitsSpec is the ip-visits pipeline over generated access-log records
// (no Kafka): keyed windows, so every checkpoint carries state files.
const visitsSpec = `name: visits-hdfs
parallelism: 2
checkpoint: {interval: 300ms}
restart: {strategy: fixed, attempts: 20, delay: 200ms}
pipeline:
  - name: gen
    source:
      datagen: {profile: access-log, seed: 7, rate: 2000}
      schema: {ip: string, ts: int, url: string, status: int, bytes: int}
      event_time: {field: ts, max_out_of_orderness: 5s}
  - name: found
    filter: status != 404
  - name: by-ip
    key_by: ip
  - name: per-minute
    window:
      tumbling: 1m
      aggregates: {count: count(), bytes: sum(bytes)}
  - name: sink
    sink: {discard: {}}
`

func latest(t *testing.T, c *cluster.Cluster, id string) (completed int64, attempt int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cps, err := c.Client().Checkpoints(ctx, id)
	if err != nil || cps.Latest == nil {
		return 0, 0
	}
	return cps.Latest.ID, cps.Latest.Attempt
}

// failedAfter returns the first failed checkpoint newer than after.
func failedAfter(t *testing.T, c *cluster.Cluster, id string, after int64) *api.CheckpointStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cps, err := c.Client().Checkpoints(ctx, id)
	if err != nil {
		return nil
	}
	for i := len(cps.History) - 1; i >= 0; i-- {
		if h := cps.History[i]; h.ID > after && h.Status == "FAILED" {
			return &h
		}
	}
	return nil
}

func restarts(t *testing.T, c *cluster.Cluster, id string) []api.Restart {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := c.Client().Restarts(ctx, id)
	if err != nil {
		return nil
	}
	return rs.Restarts
}

// TestFailoverRestoresFromHDFS: a stateful job checkpoints to hdfs://; a
// worker dies and the job restores from the latest checkpoint read back from
// HDFS; the datanode then drops writes mid-block (checkpoints fail, the job
// keeps running) and the namenode goes down and comes back (checkpoints
// resume). Completed checkpoints in HDFS stay readable and restorable
// throughout.
func TestFailoverRestoresFromHDFS(t *testing.T) {
	if testing.Short() {
		t.Skip("whole-cluster test")
	}
	srv := hdfstest.New(t, hdfstest.Config{BlockSize: 1 << 20})
	root := fmt.Sprintf("hdfs://%s/weir?user=weir&io_timeout=5s", srv.NameNodeAddr())
	c := cluster.New(t, cluster.Config{Workers: 3, Slots: 2, CheckpointStorage: root})
	id := c.Submit(t, visitsSpec)
	c.WaitState(t, id, "RUNNING", 30*time.Second)

	var before int64
	cluster.Eventually(t, 60*time.Second, func() bool {
		before, _ = latest(t, c, id)
		return before >= 2
	}, "two completed checkpoints on hdfs://")

	// A worker dies: the whole job restarts from a checkpoint in HDFS.
	victim := -1
	j := c.Job(t, id)
	for i, w := range []string{"w1", "w2", "w3"} {
		for _, v := range j.Vertices {
			for _, s := range v.Subtasks {
				if s.Worker == w && victim < 0 {
					victim = i
				}
			}
		}
	}
	c.KillWorker(victim)
	var r api.Restart
	cluster.Eventually(t, 60*time.Second, func() bool {
		rs := restarts(t, c, id)
		if len(rs) == 0 || rs[0].RunningAt == nil {
			return false
		}
		r = rs[0]
		return true
	}, "the restart after killing worker %d", victim+1)
	if r.RestoredFrom < before {
		t.Fatalf("restored from checkpoint %d, but %d had completed before the kill (%+v)", r.RestoredFrom, before, r)
	}
	t.Logf("restart: cause %q, restored from %d (%s)", r.Cause, r.RestoredFrom, r.Location)
	var after int64
	cluster.Eventually(t, 60*time.Second, func() bool {
		id2, att := latest(t, c, id)
		after = id2
		return att == r.Attempt && id2 > r.RestoredFrom
	}, "a checkpoint of the restored attempt")

	// The datanode drops every write mid-block: checkpoints fail, the job
	// keeps running; once the fault clears they complete again.
	srv.SetFaults(hdfstest.Faults{DropWriteAfter: 100})
	var f *api.CheckpointStats
	cluster.Eventually(t, 30*time.Second, func() bool {
		f = failedAfter(t, c, id, after)
		return f != nil
	}, "a checkpoint failed by the datanode fault")
	t.Logf("datanode drops writes: checkpoint %d %s: %s", f.ID, f.FailureReason, f.Failure)
	if !strings.Contains(f.Failure, "unavailable") {
		t.Errorf("checkpoint %d failed with %q, want the storage's unavailable error", f.ID, f.Failure)
	}
	srv.SetFaults(hdfstest.Faults{})
	failed := f.ID
	cluster.Eventually(t, 60*time.Second, func() bool {
		id2, _ := latest(t, c, id)
		return id2 > failed
	}, "checkpoints after the datanode fault")
	after, _ = latest(t, c, id)

	// The namenode goes down and comes back.
	srv.StopNameNode()
	cluster.Eventually(t, 30*time.Second, func() bool {
		f = failedAfter(t, c, id, after)
		return f != nil
	}, "a checkpoint failed while the namenode is down")
	t.Logf("namenode down: checkpoint %d %s: %s", f.ID, f.FailureReason, f.Failure)
	if id2, _ := latest(t, c, id); id2 > f.ID {
		t.Errorf("checkpoint %d completed while the namenode was down", id2)
	}
	if err := srv.StartNameNode(); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 60*time.Second, func() bool {
		id2, _ := latest(t, c, id)
		return id2 > after
	}, "checkpoints after the namenode came back")
	if j := c.Job(t, id); j.State != "RUNNING" {
		t.Fatalf("job %s after the HDFS faults", j.State)
	}

	// What is in HDFS restores.
	st, err := checkpoint.OpenStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	ids, err := checkpoint.ListCompleted(ctx, st, id)
	if err != nil || len(ids) == 0 {
		t.Fatalf("ListCompleted on hdfs:// = %v, %v", ids, err)
	}
	newest := ids[len(ids)-1]
	dir := checkpoint.CheckpointDir(id, newest)
	m, err := checkpoint.ReadMetadata(ctx, st, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.ValidateForRestore(ctx, st, dir, m); err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, sub := range m.GetSubtasks() {
		for _, op := range sub.GetOperators() {
			if h := op.GetHandle(); h != nil {
				if _, err := checkpoint.ReadState(ctx, st, dir, h); err != nil {
					t.Fatal(err)
				}
				files++
			}
		}
	}
	if files == 0 {
		t.Fatalf("checkpoint %d has no state files", newest)
	}
	t.Logf("retained checkpoints %v; %d holds %d state files", ids, newest, files)
	// Workers wrote their state files as the coordinator's HDFS user: the
	// locations the coordinator handed them carried it.
	for _, f := range srv.Files() {
		if f.Owner != "weir" {
			t.Errorf("%s is owned by %q, want weir", f.Path, f.Owner)
		}
	}
	for _, e := range srv.ProtocolErrors() {
		t.Errorf("protocol error: %s", e)
	}
	c.Cancel(t, id)
	c.Terminate()
}
