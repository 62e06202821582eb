package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/coordinator/jobstore"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

// Config configures a Coordinator. Zero fields take the defaults below.
type Config struct {
	// GRPCAddr is where workers connect (default 127.0.0.1:6123; port 0
	// picks a free port).
	GRPCAddr string
	// HTTPAddr serves the REST API, /healthz and /metrics (default
	// 127.0.0.1:8081).
	HTTPAddr string
	// HeartbeatInterval is sent to workers on registration (default 1s).
	HeartbeatInterval time.Duration
	// HeartbeatTimeout drops a worker that has been silent this long
	// (default 5s). It must exceed HeartbeatInterval.
	HeartbeatTimeout time.Duration
	// ScheduleTimeout fails a job that waited this long for free slots
	// (default 60s; negative: wait forever).
	ScheduleTimeout time.Duration
	// MaxSpecBytes bounds a submitted spec (default 1 MiB).
	MaxSpecBytes int64
	Logger       *slog.Logger
	// ParseSpec parses and validates a job spec (default registry.ParseSpec:
	// spec.Parse, then the process nodes against the user operators in this
	// binary). An error that holds spec.Errors becomes one detail per field
	// error.
	ParseSpec func([]byte) (*spec.Job, error)
	// BuildGraph derives the job graph (default graph.Build).
	BuildGraph func(*spec.Job) (*graph.Graph, error)
	// CheckJob, when set, checks a parsed job against the outside world
	// before it is accepted (the exactly-once Kafka sink's transaction
	// timeout against the brokers' limit: kafka.CheckJob). An error refuses
	// the submission with 400; a spec.Errors becomes one detail per field.
	CheckJob func(context.Context, *spec.Job) error
	// Clock is the time source (default the wall clock).
	Clock clock.Clock
	// CheckpointStorage is the root URI of checkpoints and savepoints for
	// jobs whose spec names none (default file://./.weir/checkpoints, a
	// path relative to the working directory).
	CheckpointStorage string
	// OpenStorage opens checkpoint storage (default checkpoint.OpenStorage,
	// with file://./relative accepted as a relative path). Tests inject a
	// fault-injecting store here.
	OpenStorage func(uri string) (checkpoint.Storage, error)
	// StorageTimeout bounds one checkpoint storage operation of the
	// coordinator (default 30s).
	StorageTimeout time.Duration
	// Rand returns a number in [0, 1) for restart jitter (default
	// math/rand/v2).
	Rand func() float64
	// JobStore remembers submitted jobs across coordinator restarts
	// (default: files under CheckpointStorage's _jobs directory). A
	// coordinator that starts resumes every job it finds there that should
	// still run, from its latest completed checkpoint.
	JobStore jobstore.Store
	// Fence, when set, makes this coordinator prove its leadership before
	// every checkpoint step another coordinator must not also take
	// (coordinator/ha). nil: a single coordinator.
	Fence Fence
	// AdoptWindow is how long a coordinator that took jobs over waits for
	// workers to report the subtasks of a job's last attempt before it
	// restarts the job from its checkpoint instead (default twice the
	// heartbeat timeout; negative: never adopt, restart at once).
	AdoptWindow time.Duration
	// Identity, shown by GET /api/v1/overview and the web UI: who this
	// coordinator is and how it leads (nil: a single coordinator).
	Identity *api.CoordinatorInfo
}

// Defaults.
const (
	DefaultGRPCAddr          = "127.0.0.1:6123"
	DefaultHTTPAddr          = "127.0.0.1:8081"
	DefaultHeartbeatInterval = time.Second
	DefaultHeartbeatTimeout  = 5 * time.Second
	DefaultScheduleTimeout   = 60 * time.Second
	DefaultMaxSpecBytes      = 1 << 20
	DefaultCheckpointStorage = "file://./.weir/checkpoints"
	DefaultStorageTimeout    = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ScheduleTimeout == 0 {
		c.ScheduleTimeout = DefaultScheduleTimeout
	}
	if c.MaxSpecBytes == 0 {
		c.MaxSpecBytes = DefaultMaxSpecBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ParseSpec == nil {
		c.ParseSpec = registry.ParseSpec
	}
	if c.BuildGraph == nil {
		c.BuildGraph = graph.Build
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.CheckpointStorage == "" {
		c.CheckpointStorage = DefaultCheckpointStorage
	}
	if c.OpenStorage == nil {
		c.OpenStorage = OpenStorage
	}
	if c.StorageTimeout == 0 {
		c.StorageTimeout = DefaultStorageTimeout
	}
	if c.AdoptWindow == 0 {
		c.AdoptWindow = 2 * c.HeartbeatTimeout
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
}

// OpenStorage is checkpoint.OpenStorage that also takes file://./relative
// and file://../relative as a path relative to the working directory.
func OpenStorage(uri string) (checkpoint.Storage, error) {
	if rest, ok := strings.CutPrefix(uri, "file://"); ok && (strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../")) {
		return checkpoint.OpenStorage(rest)
	}
	return checkpoint.OpenStorage(uri)
}

// Validate reports every problem with the config (after defaults).
func (c *Config) Validate() error {
	var errs []error
	if c.HeartbeatInterval < 0 {
		errs = append(errs, errors.New("coordinator: heartbeat interval must be positive"))
	}
	if c.HeartbeatTimeout <= c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("coordinator: heartbeat timeout %s must exceed the heartbeat interval %s", c.HeartbeatTimeout, c.HeartbeatInterval))
	}
	if c.StorageTimeout < 0 {
		errs = append(errs, errors.New("coordinator: storage timeout must be positive"))
	}
	if c.MaxSpecBytes < 0 {
		errs = append(errs, errors.New("coordinator: max spec bytes must be positive"))
	}
	return errors.Join(errs...)
}

// checkJob runs Config.CheckJob, if set, bounded by the storage timeout.
func (c *Coordinator) checkJob(ctx context.Context, job *spec.Job) error {
	if c.cfg.CheckJob == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StorageTimeout)
	defer cancel()
	return c.cfg.CheckJob(ctx, job)
}
