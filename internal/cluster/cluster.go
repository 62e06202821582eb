// Package cluster runs a whole weir cluster inside one test process: a
// coordinator, N workers with the real task runtime and data exchange over
// gRPC on 127.0.0.1 ports, and optionally an in-process Kafka-protocol
// broker. It is the in-process counterpart of tests/e2e (which runs the
// built binary), in the spirit of etcd's tests/framework/integration.
//
//	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4, Kafka: true})
//	id := c.Submit(t, specYAML)
//	j := c.WaitState(t, id, "FINISHED", 30*time.Second)
//
// Everything is stopped by Terminate, which also runs on t.Cleanup; use
// Main in TestMain to fail the run when a goroutine outlives the tests.
package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/kafka/devbroker"
	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/tlsconf"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/builder"
)

// Config configures a test cluster. Zero fields take the defaults noted.
type Config struct {
	// Workers is the number of workers (default 1).
	Workers int
	// Slots per worker (default 4).
	Slots int
	// Kafka starts an in-process dev broker (KafkaAddr).
	Kafka bool
	// KafkaPartitions is the partition count of auto-created topics
	// (default the dev broker's, 4).
	KafkaPartitions int32
	// HeartbeatInterval (default 50ms) and HeartbeatTimeout (default 5s)
	// of the coordinator.
	HeartbeatInterval, HeartbeatTimeout time.Duration
	// ScheduleTimeout fails a job that waits this long for slots (default
	// the coordinator's, 60s).
	ScheduleTimeout time.Duration
	// Logger receives every component's logs (default: discarded, or text
	// on stderr when WEIR_TEST_LOG is set).
	Logger *slog.Logger
	// CheckpointStorage is the coordinator's default checkpoint root, where
	// it also keeps its job store (default: a fresh temporary directory).
	CheckpointStorage string
	// TLS, when set, is every process's cluster certificate: the control
	// and data planes run over mutual TLS, as with weir dev (default:
	// plaintext).
	TLS *tlsconf.Source
}

func (c *Config) setDefaults() {
	if c.Workers == 0 {
		c.Workers = 1
	}

	if c.Slots == 0 {
		c.Slots = 4
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 50 * time.Millisecond
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		var w io.Writer = io.Discard
		if os.Getenv("WEIR_TEST_LOG") != "" {
			w = os.Stderr
		}
		c.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// Cluster is a running in-process cluster.
type Cluster struct {
	cfg    Config
	coord  *coordinator.Coordinator
	broker *devbroker.Broker
	client *api.Client

	mu      sync.Mutex
	workers []*worker.Worker
	killed  []bool

	termOnce sync.Once
}

// New starts a cluster and waits until every worker has registered. It
// fails the test on any error and terminates the cluster on t.Cleanup.
func New(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	cfg.setDefaults()
	if cfg.CheckpointStorage == "" {
		cfg.CheckpointStorage = "file://" + t.TempDir()
	}
	c := &Cluster{cfg: cfg}
	t.Cleanup(c.Terminate)
	if cfg.Kafka {
		b, err := devbroker.Start(devbroker.Config{Addr: "127.0.0.1:0", Partitions: cfg.KafkaPartitions})
		if err != nil {
			t.Fatalf("cluster: dev broker: %v", err)
		}
		c.broker = b
	}
	co, err := coordinator.New(coordinator.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		HeartbeatInterval: cfg.HeartbeatInterval, HeartbeatTimeout: cfg.HeartbeatTimeout,
		ScheduleTimeout: cfg.ScheduleTimeout, Logger: cfg.Logger,
		CheckpointStorage: cfg.CheckpointStorage, TLS: cfg.TLS,
	})
	if err != nil {
		t.Fatalf("cluster: coordinator: %v", err)
	}
	if err := co.Start(); err != nil {
		t.Fatalf("cluster: coordinator: %v", err)
	}
	c.coord = co
	c.client = api.NewClient("http://" + co.HTTPAddr())
	for range cfg.Workers {
		c.AddWorker(t)
	}
	return c
}

// AddWorker starts one more worker (id "w<n>", n from 1) and waits until it
// has registered. It returns the worker's index.
func (c *Cluster) AddWorker(t testing.TB) int {
	t.Helper()
	c.mu.Lock()
	i := len(c.workers)
	c.mu.Unlock()
	id := fmt.Sprintf("w%d", i+1)
	w, err := worker.New(worker.Config{
		CoordinatorAddr: c.coord.GRPCAddr(), DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Slots: c.cfg.Slots, ID: id, Builder: builder.New(), Logger: c.cfg.Logger,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, TLS: c.cfg.TLS,
	})
	if err != nil {
		t.Fatalf("cluster: worker %s: %v", id, err)
	}
	if err := w.Start(); err != nil {
		t.Fatalf("cluster: worker %s: %v", id, err)
	}
	c.mu.Lock()
	c.workers = append(c.workers, w)
	c.killed = append(c.killed, false)
	c.mu.Unlock()
	Eventually(t, 10*time.Second, func() bool {
		ws, err := c.client.Workers(context.Background())
		if err != nil {
			return false
		}
		for _, x := range ws {
			if x.ID == id && x.State == "ALIVE" {
				return true
			}
		}
		return false
	}, "worker %s to register", id)
	return i
}

// Client is a REST client for the coordinator.
func (c *Cluster) Client() *api.Client { return c.client }

// Coordinator is the running coordinator.
func (c *Cluster) Coordinator() *coordinator.Coordinator { return c.coord }

// Worker returns worker i (from 0).
func (c *Cluster) Worker(i int) *worker.Worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.workers[i]
}

// KafkaAddr is the dev broker's host:port ("" without Kafka).
func (c *Cluster) KafkaAddr() string {
	if c.broker == nil {
		return ""
	}
	return c.broker.Addr()
}

// Broker is the dev broker (nil without Kafka), for fault injection.
func (c *Cluster) Broker() *devbroker.Broker { return c.broker }

// KillWorker stops worker i without draining: its tasks are cancelled
// mid-stream, its session and data server close, and the coordinator sees
// the session break. Killing a worker twice does nothing.
func (c *Cluster) KillWorker(i int) {
	c.mu.Lock()
	if c.killed[i] {
		c.mu.Unlock()
		return
	}
	c.killed[i] = true
	w := c.workers[i]
	c.mu.Unlock()
	w.Stop()
}

// Terminate stops the workers, the coordinator and the broker, and returns
// when all their goroutines have exited. It is idempotent and runs on
// t.Cleanup.
func (c *Cluster) Terminate() {
	c.termOnce.Do(func() {
		c.mu.Lock()
		ws := append([]*worker.Worker(nil), c.workers...)
		c.mu.Unlock()
		var wg sync.WaitGroup
		for _, w := range ws {
			wg.Go(w.Stop)
		}
		wg.Wait()
		if c.coord != nil {
			c.coord.Stop()
		}
		if c.broker != nil {
			c.broker.Close()
		}
	})
}

// Submit submits a job spec. "${KAFKA_BROKERS}" in the text is replaced by
// the broker's address first. It fails the test when the spec is refused.
func (c *Cluster) Submit(t testing.TB, specYAML string) string {
	t.Helper()
	id, err := c.TrySubmit(specYAML)
	if err != nil {
		t.Fatalf("cluster: submit: %v\nspec:\n%s", err, specYAML)
	}
	return id
}

// TrySubmit is Submit returning the error (an *api.Error for a refused
// spec).
func (c *Cluster) TrySubmit(specYAML string) (string, error) {
	specYAML = strings.ReplaceAll(specYAML, "${KAFKA_BROKERS}", c.KafkaAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.client.Submit(ctx, []byte(specYAML))
}

// Job returns a job's details, failing the test on error.
func (c *Cluster) Job(t testing.TB, id string) *api.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := c.client.Job(ctx, id)
	if err != nil {
		t.Fatalf("cluster: job %s: %v", id, err)
	}
	return j
}

// Cancel cancels a job, failing the test on error.
func (c *Cluster) Cancel(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client.Cancel(ctx, id); err != nil {
		t.Fatalf("cluster: cancel %s: %v", id, err)
	}
}

// terminal job states: a job in one of them never changes again.
var terminal = map[string]bool{"FINISHED": true, "FAILED": true, "CANCELLED": true}

// WaitState polls until the job is in state and returns it. It fails the
// test at the timeout, or at once when the job reaches another terminal
// state (FINISHED, FAILED, CANCELLED), reporting its failure cause and
// subtask errors.
func (c *Cluster) WaitState(t testing.TB, id, state string, timeout time.Duration) *api.Job {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *api.Job
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		j, err := c.client.Job(ctx, id)
		cancel()
		if err == nil {
			last = j
			if j.State == state {
				return j
			}
			if terminal[j.State] {
				t.Fatalf("cluster: job %s is %s, want %s\n%s", id, j.State, state, Describe(j))
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			if last == nil {
				t.Fatalf("cluster: job %s not %s after %s: %v", id, state, timeout, lastErr)
			}
			t.Fatalf("cluster: job %s not %s after %s\n%s", id, state, timeout, Describe(last))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Describe renders a job's state, cause and subtasks for failure messages.
func Describe(j *api.Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "job %s (%s) state %s attempt %d", j.ID, j.Name, j.State, j.Attempt)
	if j.Message != "" {
		fmt.Fprintf(&b, "\n  message: %s", j.Message)
	}
	if j.FailureCause != "" {
		fmt.Fprintf(&b, "\n  cause: %s", j.FailureCause)
	}
	for _, v := range j.Vertices {
		fmt.Fprintf(&b, "\n  vertex %s %v p=%d", v.ID, v.Nodes, v.Parallelism)
		for _, s := range v.Subtasks {
			fmt.Fprintf(&b, "\n    [%d] %s on %s in=%d out=%d", s.Index, s.State, s.Worker, s.RecordsIn, s.RecordsOut)
			if s.Error != "" {
				fmt.Fprintf(&b, " error=%q", s.Error)
			}
		}
	}
	return b.String()
}

// Eventually polls cond every 10ms until it holds, failing the test with
// the formatted message after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// JobCounter returns the coordinator's metric name (e.g.
// "weir_job_skipped_invalid_total") for one vertex of a job, summed as the
// coordinator reports it; 0 when absent.
func (c *Cluster) JobCounter(t testing.TB, name, job, vertex string) float64 {
	t.Helper()
	mfs, err := c.coord.Registry().Gather()
	if err != nil {
		t.Fatalf("cluster: gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if (l.GetName() == "job" && l.GetValue() != job) || (l.GetName() == "vertex" && l.GetValue() != vertex) {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
