package coordinator_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/builder"
)

// stallStore blocks the writes (Create, Rename, DeleteAll) of paths that
// contain a marker while stalled, until released or the call's context
// ends: a storage (HDFS, S3) that hangs, not one that fails.
type stallStore struct {
	checkpoint.Storage
	mu      sync.Mutex
	marker  string
	gate    chan struct{}
	blocked atomic.Int64 // calls that hit the stall
}

func (s *stallStore) stall(marker string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marker, s.gate = marker, make(chan struct{})
	s.blocked.Store(0)
}

func (s *stallStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *stallStore) wait(ctx context.Context, paths ...string) error {
	s.mu.Lock()
	gate, marker := s.gate, s.marker
	s.mu.Unlock()
	if gate == nil {
		return nil
	}
	for _, p := range paths {
		if strings.Contains(p, marker) {
			s.blocked.Add(1)
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func (s *stallStore) Create(ctx context.Context, p string) (io.WriteCloser, error) {
	if err := s.wait(ctx, p); err != nil {
		return nil, err
	}
	return s.Storage.Create(ctx, p)
}

func (s *stallStore) Rename(ctx context.Context, from, to string) error {
	if err := s.wait(ctx, from, to); err != nil {
		return err
	}
	return s.Storage.Rename(ctx, from, to)
}

func (s *stallStore) DeleteAll(ctx context.Context, p string) error {
	if err := s.wait(ctx, p); err != nil {
		return err
	}
	return s.Storage.DeleteAll(ctx, p)
}

// stallCluster is a coordinator with a short heartbeat timeout over a
// stallable storage, two real workers, and a running job with checkpoints
// every 100 ms.
func stallCluster(t *testing.T, mutate ...func(*coordinator.Config)) (*stallStore, *coordinator.Coordinator, *api.Client, string) {
	t.Helper()
	root := t.TempDir()
	var store *stallStore
	var once sync.Once
	c := startCoordinator(t, clock.Real{}, func(cfg *coordinator.Config) {
		cfg.ParseSpec, cfg.BuildGraph = spec.Parse, graph.Build
		cfg.CheckpointStorage = "file://" + root
		cfg.HeartbeatInterval, cfg.HeartbeatTimeout = 50*time.Millisecond, 500*time.Millisecond
		cfg.OpenStorage = func(uri string) (checkpoint.Storage, error) {
			st, err := coordinator.OpenStorage(uri)
			if err != nil {
				return nil, err
			}
			once.Do(func() { store = &stallStore{Storage: st} })
			if uri == "file://"+root {
				return store, nil
			}
			return st, nil
		}
		for _, m := range mutate {
			m(cfg)
		}
	})
	// Released before the coordinator stops (cleanups run last first), so
	// no call waits out the storage timeout.
	t.Cleanup(store.release)
	for _, id := range []string{"s1", "s2"} {
		w, err := worker.New(worker.Config{CoordinatorAddr: c.GRPCAddr(), DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Slots: 2, ID: id, Builder: builder.New(), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	cl := api.NewClient("http://" + c.HTTPAddr())
	ctx := context.Background()
	eventually(t, 10*time.Second, func() bool { ws, _ := cl.Workers(ctx); return len(ws) == 2 }, "workers")
	id, err := cl.Submit(ctx, []byte(`name: stall
parallelism: 2
checkpoint: {interval: 100ms}
restart: {strategy: fixed, attempts: 100, delay: 0s}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 1000}}
  - name: by-id
    key_by: id
  - name: out
    sink: {discard: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() bool {
		cs, _ := cl.Checkpoints(ctx, id)
		return cs != nil && cs.Counts.Completed >= 1
	}, "a first checkpoint")
	return store, c, cl, id
}

// heartbeatsGoOn waits, while storage is stalled, until the coordinator has
// seen every worker's heartbeat well past the heartbeat timeout after the
// stall began, answering REST reads all along, and checks that it lost no
// worker and restarted nothing meanwhile.
func heartbeatsGoOn(t *testing.T, cl *api.Client, id string, since time.Time, timeout time.Duration) {
	t.Helper()
	// Every read gets a second: a coordinator whose reads wait for the
	// stalled storage fails here rather than at the end.
	read := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Second)
	}
	ctx, cancel := read()
	defer cancel()
	before, err := cl.Workers(ctx)
	if err != nil {
		t.Fatalf("REST /workers while storage is stalled: %v", err)
	}
	eventually(t, 30*time.Second, func() bool {
		ctx, cancel := read()
		defer cancel()
		ws, err := cl.Workers(ctx)
		if err != nil || len(ws) != 2 {
			return false
		}
		for _, w := range ws {
			if w.LastHeartbeat.Before(since.Add(3 * timeout)) {
				return false
			}
		}
		return true
	}, "heartbeats more than 3 heartbeat timeouts into the stall")
	ctx, cancel = read()
	defer cancel()
	after, err := cl.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range after {
		if len(before) != len(after) || !after[i].RegisteredAt.Equal(before[i].RegisteredAt) {
			t.Fatalf("a worker was dropped and registered again while storage stalled: before %+v, after %+v", before, after)
		}
	}
	j, err := cl.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != "RUNNING" || j.Attempt != 1 || j.Restarts != 0 {
		t.Fatalf("job during the stall: state %s attempt %d restarts %d (%+v), want RUNNING, attempt 1, no restart", j.State, j.Attempt, j.Restarts, j.LastFailure)
	}
}

// TestStalledCheckpointStorageLosesNoWorker: a _metadata write that hangs
// for many heartbeat timeouts stalls that checkpoint only; heartbeats,
// liveness and REST reads go on, no worker is lost, the job is not
// restarted, and checkpoints complete again once storage recovers.
func TestStalledCheckpointStorageLosesNoWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real workers")
	}
	store, _, cl, id := stallCluster(t)
	ctx := context.Background()
	store.stall("_metadata")
	eventually(t, 30*time.Second, func() bool { return store.blocked.Load() > 0 }, "a _metadata write to stall")
	since := time.Now()
	heartbeatsGoOn(t, cl, id, since, 500*time.Millisecond)
	cs, err := cl.Checkpoints(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	done := cs.Counts.Completed
	store.release()
	eventually(t, 30*time.Second, func() bool {
		cs, _ := cl.Checkpoints(ctx, id)
		return cs != nil && cs.Counts.Completed >= done+2
	}, "checkpoints to complete after storage recovered")
	j, err := cl.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Attempt != 1 || j.Restarts != 0 {
		t.Fatalf("job restarted: attempt %d restarts %d (%+v)", j.Attempt, j.Restarts, j.LastFailure)
	}
}

// TestStalledJobStoreLosesNoWorker: a job store write that hangs (a submit
// waits for it) holds up that submit only; the running job's heartbeats,
// liveness and REST reads go on, and the submit completes once the store
// recovers.
func TestStalledJobStoreLosesNoWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real workers")
	}
	store, c, cl, id := stallCluster(t)
	store.stall("_jobs")
	slow := api.NewClient("http://" + c.HTTPAddr())
	type result struct {
		id  string
		err error
	}
	submitted := make(chan result, 1)
	go func() {
		id, err := slow.Submit(context.Background(), []byte(`name: second
parallelism: 1
restart: {strategy: none}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 10}}
  - name: out
    sink: {discard: {}}
`))
		submitted <- result{id, err}
	}()
	eventually(t, 30*time.Second, func() bool { return store.blocked.Load() > 0 }, "a job store write to stall")
	since := time.Now()
	heartbeatsGoOn(t, cl, id, since, 500*time.Millisecond)
	select {
	case r := <-submitted:
		t.Fatalf("submit returned while the job store stalled: %+v", r)
	default:
	}
	store.release()
	r := <-submitted
	if r.err != nil {
		t.Fatalf("submit after the job store recovered: %v", r.err)
	}
	waitJob(t, cl, r.id, "RUNNING")
}

// stallFence is a Fence (an etcd in production) whose calls hang while
// stalled, until released or the call's context ends.
type stallFence struct {
	mu      sync.Mutex
	gate    chan struct{}
	blocked atomic.Int64
	last    map[string]int64
}

func (f *stallFence) wait(ctx context.Context) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate == nil {
		return nil
	}
	f.blocked.Add(1)
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *stallFence) stall() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
}

func (f *stallFence) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
}

func (f *stallFence) Trigger(ctx context.Context, job string, n int64) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last[job] = max(f.last[job], n)
	return nil
}

func (f *stallFence) Guard(ctx context.Context) error { return f.wait(ctx) }

func (f *stallFence) Completed(ctx context.Context, _ string, _ int64, _ string) error {
	return f.wait(ctx)
}

func (f *stallFence) LastID(_ context.Context, job string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[job], nil
}

// TestStalledFenceLosesNoWorker: with several coordinators the fence
// (etcd) is asked before every trigger, commit and notification; an etcd
// that hangs stalls checkpoints only, and they go on once it answers.
func TestStalledFenceLosesNoWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real workers")
	}
	fence := &stallFence{last: map[string]int64{}}
	_, _, cl, id := stallCluster(t, func(cfg *coordinator.Config) { cfg.Fence = fence })
	t.Cleanup(fence.release)
	ctx := context.Background()
	fence.stall()
	eventually(t, 30*time.Second, func() bool { return fence.blocked.Load() > 0 }, "a fence call to stall")
	heartbeatsGoOn(t, cl, id, time.Now(), 500*time.Millisecond)
	cs, err := cl.Checkpoints(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	done := cs.Counts.Completed
	fence.release()
	eventually(t, 30*time.Second, func() bool {
		cs, _ := cl.Checkpoints(ctx, id)
		return cs != nil && cs.Counts.Completed >= done+2
	}, "checkpoints to complete after the fence recovered")
}
