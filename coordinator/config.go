package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/coordinator/jobstore"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
	"github.com/weir-stream/weir/internal/tlsconf"
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
	// HTTPReadTimeout bounds reading one HTTP request, headers and body
	// (default 30s); headers alone get at most 10s.
	HTTPReadTimeout time.Duration
	// HTTPIdleTimeout closes a keep-alive connection idle this long
	// (default 2m).
	HTTPIdleTimeout time.Duration
	Logger          *slog.Logger
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
	// CheckTopics, when set, checks the input topics of a job at submit
	// (topics.go).
	CheckTopics CheckTopicsFunc
	// Clock is the time source (default the wall clock).
	Clock clock.Clock
	// CheckpointStorage is the root URI of checkpoints and savepoints for
	// jobs whose spec names none (default file://./.weir/checkpoints, a
	// path relative to the working directory).
	CheckpointStorage string
	// AllowedPaths are where jobs may write: file sinks, and checkpoint
	// storage besides CheckpointStorage, which is always allowed (also for
	// from_savepoint). A submission naming another path is refused with
	// 400 invalid_spec. nil allows everything (embedding and tests); weir
	// coordinator always sets it (--allowed-paths).
	AllowedPaths *spec.Roots
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
	// RetainedJobs is how many ended jobs (FINISHED, FAILED, CANCELLED)
	// the coordinator keeps, the most recently ended; older ones are
	// forgotten: REST, /metrics and the job store (default 100; negative:
	// no limit).
	RetainedJobs int
	// JobRetention forgets an ended job this long after it ended (default
	// 24h; negative: no age limit).
	JobRetention time.Duration
	// Tokens authenticates REST callers by bearer token and gives each a
	// role (auth.Tokens: --tokens-file). nil: no authentication, everyone
	// may do everything (embedding and tests; weir coordinator needs
	// --tokens-file or an explicit --insecure).
	Tokens Authenticator
	// HTTPTLS, when set, serves the REST API and web UI over HTTPS only.
	HTTPTLS *tls.Config
	// Identity, shown by GET /api/v1/overview and the web UI: who this
	// coordinator is and how it leads (nil: a single coordinator).
	Identity *api.CoordinatorInfo
	// TLS, when set, serves the control plane with mutual TLS: only a
	// worker with a certificate from the cluster's CA completes the
	// handshake, so only it can register and be sent subtasks
	// (internal/tlsconf). nil: plaintext.
	TLS *tlsconf.Source
}

// Defaults.
const (
	DefaultGRPCAddr          = "127.0.0.1:6123"
	DefaultHTTPAddr          = "127.0.0.1:8081"
	DefaultHeartbeatInterval = time.Second
	DefaultHeartbeatTimeout  = 5 * time.Second
	DefaultScheduleTimeout   = 60 * time.Second
	DefaultMaxSpecBytes      = 1 << 20
	DefaultHTTPReadTimeout   = 30 * time.Second
	DefaultHTTPIdleTimeout   = 2 * time.Minute
	DefaultCheckpointStorage = "file://./.weir/checkpoints"
	DefaultStorageTimeout    = 30 * time.Second
	DefaultRetainedJobs      = 100
	DefaultJobRetention      = 24 * time.Hour
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
	if c.HTTPReadTimeout == 0 {
		c.HTTPReadTimeout = DefaultHTTPReadTimeout
	}
	if c.HTTPIdleTimeout == 0 {
		c.HTTPIdleTimeout = DefaultHTTPIdleTimeout
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
	if c.RetainedJobs == 0 {
		c.RetainedJobs = DefaultRetainedJobs
	}
	if c.JobRetention == 0 {
		c.JobRetention = DefaultJobRetention
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
	if c.HTTPReadTimeout < 0 || c.HTTPIdleTimeout < 0 {
		errs = append(errs, errors.New("coordinator: HTTP timeouts must be positive"))
	}
	if c.AllowedPaths != nil {
		if _, err := c.AllowedPaths.WithStorage(c.CheckpointStorage); err != nil {
			errs = append(errs, fmt.Errorf("coordinator: checkpoint storage: %w", err))
		}
	}
	if c.MaxSpecBytes < 0 {
		errs = append(errs, errors.New("coordinator: max spec bytes must be positive"))
	}
	return errors.Join(errs...)
}

// checkPaths refuses a job whose file sinks or checkpoint storage are
// outside the allowed paths.
func (c *Coordinator) checkPaths(job *spec.Job) error {
	storage, err := c.storageRoots()
	if err != nil {
		return err
	}
	return spec.CheckPaths(job, c.cfg.AllowedPaths, storage)
}

// storageRoots are the allowed paths and the coordinator's own checkpoint
// storage; nil when nothing is restricted.
func (c *Coordinator) storageRoots() (*spec.Roots, error) {
	if c.cfg.AllowedPaths == nil {
		return nil, nil
	}
	return c.cfg.AllowedPaths.WithStorage(c.cfg.CheckpointStorage)
}

// checkSavepointURI refuses a from_savepoint URI outside the storage roots,
// and a relative one, whose errors would show the coordinator's working
// directory. The refusal does not depend on whether the path exists.
func (c *Coordinator) checkSavepointURI(uri string) error {
	scheme, rest, hasScheme := strings.Cut(uri, "://")
	if (!hasScheme && !filepath.IsAbs(uri)) || (strings.EqualFold(scheme, "file") && !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, "localhost/")) {
		return errors.New("want an absolute URI: file:///dir, hdfs://host:port/dir, or an absolute path")
	}
	storage, err := c.storageRoots()
	if err != nil {
		return err
	}
	return storage.CheckStorage(uri)
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
