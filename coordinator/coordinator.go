package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/checkpointing"
	"github.com/weir-stream/weir/coordinator/jobstore"
	"github.com/weir-stream/weir/coordinator/lifecycle"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/internal/buildinfo"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// Coordinator is one coordinator process: control plane, scheduler, job
// driver and REST API.
type Coordinator struct {
	cfg Config
	log *slog.Logger
	// audit gets one line per state-changing REST call (rest_auth.go).
	audit *slog.Logger
	// version is this binary's weir version (GET /api/v1/overview).
	version string

	// mu guards the jobs, the worker registry's membership, the open
	// storages and the job store handle. It is held only for work in
	// memory: storage and etcd I/O runs on each job's I/O queue
	// (jobio.go), and liveness has its own lock (live), so a slow storage
	// call cannot hold up heartbeats. Lock order: mu, then live.mu.
	mu sync.Mutex
	// workers: membership changes under mu and live.mu both; each entry's
	// lastSeen is live's.
	workers map[string]*workerEntry
	live    liveness
	jobs    map[string]*jobEntry
	// reserved are job ids handed out to submissions whose job store
	// write is still running.
	reserved map[string]bool
	order    []string // job ids in submission order
	session  uint64   // last session number handed out
	// lost queues workers found dead while dispatching, handled after.
	lost []lostWorker
	// stores are the open checkpoint storages, by root URI.
	stores map[string]checkpoint.Storage
	// jobStore remembers the jobs across restarts (Config.JobStore).
	jobStore jobstore.Store
	// drains are the draining workers, by id (drain.go).
	drains map[string]*workerDrain

	// ioCtx is the parent of every storage call's context; Stop cancels
	// it, so no I/O step outlives the coordinator by a storage timeout.
	ioCtx    context.Context
	ioCancel context.CancelFunc
	ioGuard  ioGuard
	ioWG     sync.WaitGroup

	// lifecycle of the process
	life     sync.Mutex
	started  bool
	stopped  bool
	wg       sync.WaitGroup
	stopping chan struct{}
	stopOnce sync.Once
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	grpcLn   net.Listener
	httpLn   net.Listener
	registry *prometheus.Registry
}

type jobEntry struct {
	m     *lifecycle.Job
	spec  []byte
	graph *graph.Graph

	// cp tracks the job's checkpoints and savepoints; st is its storage.
	cp *checkpointing.Tracker
	st checkpoint.Storage
	// sources are the subtasks whose vertex starts with a source: they
	// receive TriggerCheckpoint.
	sources map[lifecycle.TaskKey]bool
	// initial is what the first attempt restores from (a savepoint given
	// at submit), nil for a fresh start.
	initial *lifecycle.RestorePoint
	// bad lists checkpoints (by _metadata URI) that failed validation or
	// that a subtask failed to restore from, with why; failover passes
	// over them.
	bad map[string]string
	// rec is what the job store keeps of the job.
	rec jobstore.Record
	// resumed: a coordinator that started again took the job over from
	// its job store, so even its first attempt here restores from the
	// latest checkpoint.
	resumed bool
	// history is what checkpoint storage keeps of the job's checkpoints
	// and restarts (history.go), loaded on first use.
	history *jobHistory
	// adoptUntil: a resumed job waits until then for the workers to
	// report its last attempt's subtasks (reconcile.go); zero when not.
	adoptUntil time.Time
	// reported are those subtasks, by task.
	reported map[lifecycle.TaskKey]reportedTask
	// evictRetry: removing the ended job from the job store failed; the
	// next try is not before then (retention.go).
	evictRetry time.Time
	// io runs the job's storage and etcd steps off the lock (jobio.go).
	io *ioQueue
	// evicting: retention is removing the job's record (retention.go).
	evicting bool
	// historyLoaded: the history of earlier coordinators was read (or
	// there was none); history files are written only after it.
	historyLoaded bool
	// restore is the restore point chosen for the current SCHEDULING
	// round (failover.go), computed off the lock; restoreGen counts
	// SCHEDULING rounds so a late result is not used for a later one.
	restore    *restoreChoice
	restoreGen int
}

type lostWorker struct{ id, reason string }

// New validates cfg and returns a coordinator that is not yet listening.
func New(cfg Config) (*Coordinator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "coordinator"),
		audit:    cfg.Logger.With("component", "audit"),
		workers:  map[string]*workerEntry{},
		jobs:     map[string]*jobEntry{},
		reserved: map[string]bool{},
		stores:   map[string]checkpoint.Storage{},
		stopping: make(chan struct{}),
		version:  buildinfo.Version(),
	}
	c.ioCtx, c.ioCancel = context.WithCancel(context.Background())
	// A bad default storage is the operator's mistake: say so at start,
	// not at the first submit.
	st, err := cfg.OpenStorage(cfg.CheckpointStorage)
	if err != nil {
		return nil, fmt.Errorf("coordinator: checkpoint storage: %w", err)
	}
	c.stores[cfg.CheckpointStorage] = st
	c.jobStore = cfg.JobStore
	if c.jobStore == nil {
		c.jobStore = jobstore.NewStorage(st)
	}
	c.registry = prometheus.NewRegistry()
	if err := errors.Join(c.registry.Register(&collector{c: c}),
		c.registry.Register(collectors.NewGoCollector()),
		c.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))); err != nil {
		return nil, fmt.Errorf("coordinator: metrics: %w", err)
	}
	return c, nil
}

// Start listens on the gRPC and HTTP addresses and serves in the background.
// It does not block.
func (c *Coordinator) Start() error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.started || c.stopped {
		return errors.New("coordinator: Start called twice or after Stop")
	}
	gl, err := net.Listen("tcp", c.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("coordinator: listen for workers on %s: %w", c.cfg.GRPCAddr, err)
	}
	hl, err := net.Listen("tcp", c.cfg.HTTPAddr)
	if err != nil {
		gl.Close()
		return fmt.Errorf("coordinator: listen for HTTP on %s: %w", c.cfg.HTTPAddr, err)
	}
	if err := c.resumeJobs(); err != nil {
		gl.Close()
		hl.Close()
		return err
	}
	c.started = true
	c.grpcLn, c.httpLn = gl, hl
	c.grpcSrv = grpc.NewServer(c.cfg.TLS.ServerOptions()...)
	controlpb.RegisterCoordinatorServer(c.grpcSrv, &sessionServer{c: c})
	c.httpSrv = c.newHTTPServer()
	ticker := c.cfg.Clock.NewTicker(c.tickInterval())
	c.wg.Add(3)
	go func() {
		defer c.wg.Done()
		if err := c.grpcSrv.Serve(gl); err != nil {
			c.log.Error("gRPC server stopped", "err", err)
		}
	}()
	go func() {
		defer c.wg.Done()
		if err := c.serveHTTP(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("HTTP server stopped", "err", err)
		}
	}()
	go func() {
		defer c.wg.Done()
		defer ticker.Stop()
		for {
			select {
			case <-c.stopping:
				return
			case <-ticker.C():
				c.tick()
				c.evictEnded()
			}
		}
	}()
	c.log.Info("coordinator listening", "grpc", gl.Addr().String(), "http", hl.Addr().String())
	return nil
}

// tickInterval checks timeouts often enough to drop a silent worker within
// about one heartbeat interval of its timeout, and at least every 50 ms: a
// restarting job is rescheduled on the first tick after its restart delay,
// so the tick bounds how long a restart with no delay waits (measured:
// 0.27 s of a 0.31 s median recovery with the 500 ms tick of a 1 s
// heartbeat). A tick only compares timestamps; 20 a second cost nothing.
func (c *Coordinator) tickInterval() time.Duration {
	return min(max(c.cfg.HeartbeatInterval/2, time.Millisecond), 50*time.Millisecond)
}

// GRPCAddr is the bound control-plane address ("" before Start).
func (c *Coordinator) GRPCAddr() string {
	c.life.Lock()
	defer c.life.Unlock()
	if c.grpcLn == nil {
		return ""
	}
	return c.grpcLn.Addr().String()
}

// HTTPAddr is the bound HTTP address ("" before Start).
func (c *Coordinator) HTTPAddr() string {
	c.life.Lock()
	defer c.life.Unlock()
	if c.httpLn == nil {
		return ""
	}
	return c.httpLn.Addr().String()
}

// Stop closes every worker session and both servers and returns when every
// goroutine the coordinator started has exited. It is idempotent.
func (c *Coordinator) Stop() {
	c.stopOnce.Do(func() {
		c.life.Lock()
		c.stopped = true
		close(c.stopping)
		gs, hs := c.grpcSrv, c.httpSrv
		c.life.Unlock()
		if gs != nil {
			gs.Stop()
		}
		if hs != nil {
			hs.Close()
		}
		c.wg.Wait()
		c.stopIO()
		c.mu.Lock()
		for _, st := range c.stores {
			_ = st.Close()
		}
		c.mu.Unlock()
	})
}

// enter registers a goroutine the coordinator must wait for on Stop; it
// refuses after Stop.
func (c *Coordinator) enter() bool {
	c.life.Lock()
	defer c.life.Unlock()
	if c.stopped {
		return false
	}
	c.wg.Add(1)
	return true
}

// Registry is the coordinator's Prometheus registry (served on /metrics).
func (c *Coordinator) Registry() *prometheus.Registry { return c.registry }
