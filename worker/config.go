package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/tlsconf"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
	"github.com/weir-stream/weir/worker/task"
)

// Exchange is the data-plane service other workers send records to; wire
// exchange.New(logger, exchange.WithTLS(tls)). The worker registers it on its data gRPC server and
// closes it on Stop after every task has ended.
type Exchange interface {
	Register(s *grpc.Server)
	Close()
}

// TaskEnv is what the worker hands every task: task.Env's fields, with the
// Exchange as the worker knows it.
type TaskEnv struct {
	Builder  task.Builder
	Logger   *slog.Logger
	Exchange Exchange
	// Reporter sends checkpoint acks and declines on the session.
	Reporter task.Reporter
	// OpenStore opens checkpoint storage (Config.OpenStore).
	OpenStore task.OpenStoreFunc
	// Running reports the subtask RUNNING. A subtask that restores state
	// stays DEPLOYING until the RunFunc calls it (task.Run does once its
	// state is restored and its operators are open), so the coordinator's
	// "restored" step means restored; one that restores nothing is RUNNING
	// from the start.
	Running func()
	// InputEnded reports that a source subtask reached the end of its
	// input (TaskStatus.end_of_input).
	InputEnded func()
}

// RunFunc runs one subtask until it ends or ctx is cancelled; wire
// task.Run. It returns nil when the subtask finished (end of stream).
type RunFunc func(ctx context.Context, d task.Deployment, env TaskEnv, counters *dataflow.Counters) error

// Config configures a Worker. Zero fields take the defaults below.
type Config struct {
	// CoordinatorAddr is the coordinator's gRPC address (required), or the
	// addresses of every coordinator of an HA cluster, comma-separated:
	// the worker registers with whichever leads (only the leader listens).
	CoordinatorAddr string
	// DataAddr serves the Exchange (default ":7071"; ":0" picks a port).
	DataAddr string
	// AdvertiseDataAddr is the data address other workers dial (default
	// the bound DataAddr, with the host name for an unspecified host).
	AdvertiseDataAddr string
	// HTTPAddr serves /metrics and /healthz (default ":8082").
	HTTPAddr string
	// MetricsTokens, when set, are the bearer tokens /metrics answers
	// (any of them); a request without one gets 401. /healthz stays open
	// for probes. nil: /metrics is open (docs/security.md).
	MetricsTokens []string
	// Slots is how many subtasks run at once (default the number of CPUs).
	Slots int
	// ID is stable for the process lifetime (default host name + random).
	ID string
	// Version is the weir version it reports (default this binary's).
	Version string
	// Operators are the user operators it reports (default those
	// registered in this binary; tests set others).
	Operators []*controlpb.Operator
	Logger    *slog.Logger
	Builder   task.Builder
	// ParseSpec, BuildGraph, RunTask and NewExchange default to spec.Parse,
	// graph.Build, task.Run and exchange.New (wiring.go); tests replace them.
	ParseSpec   func([]byte) (*spec.Job, error)
	BuildGraph  func(*spec.Job) (*graph.Graph, error)
	RunTask     RunFunc
	NewExchange func(*slog.Logger, *tlsconf.Source) Exchange
	// TLS, when set, makes the session with the coordinator and the data
	// plane (served and dialed) mutual TLS with the cluster's certificates
	// (internal/tlsconf). nil: plaintext.
	TLS *tlsconf.Source
	// OpenStore opens checkpoint storage by URI; nil: checkpoint.OpenStorage.
	OpenStore task.OpenStoreFunc
	// AllowedPaths are where the subtasks may write: file sinks and
	// checkpoint storage outside them fail the subtask before anything is
	// opened. nil allows everything (embedding and tests); weir worker
	// always sets it (--allowed-paths).
	AllowedPaths *spec.Roots
	// ReconnectMin and ReconnectMax bound the backoff between attempts to
	// reach the coordinator (defaults 100ms and 5s).
	ReconnectMin, ReconnectMax time.Duration
	// ReconnectGrace is how long the subtasks keep running after the
	// session with the coordinator breaks (default 30s; negative: cancel
	// them at once). A worker that registers again within it reports them,
	// and the coordinator reconciles: it adopts a job's whole attempt (a
	// restarted coordinator or a new leader) or cancels them. After it the
	// worker cancels them itself.
	ReconnectGrace time.Duration
	// MemoryLimit is the worker's memory limit in bytes (0: none), reported
	// with heartbeats so that the coordinator warns as the heap nears it
	// and explains a worker lost near it. The caller applies it to the
	// runtime (ResolveMemoryLimit, ApplyMemoryLimit).
	MemoryLimit int64
}

// Defaults.
const (
	DefaultDataAddr       = ":7071"
	DefaultHTTPAddr       = ":8082"
	DefaultReconnectMin   = 100 * time.Millisecond
	DefaultReconnectMax   = 5 * time.Second
	DefaultReconnectGrace = 30 * time.Second
)

// wired holds the real implementations; wiring.go fills it in, so that the
// rest of the package builds and tests without them.
var wired struct {
	parseSpec   func([]byte) (*spec.Job, error)
	buildGraph  func(*spec.Job) (*graph.Graph, error)
	runTask     RunFunc
	newExchange func(*slog.Logger, *tlsconf.Source) Exchange
}

func (c *Config) setDefaults() {
	if c.Version == "" {
		c.Version = defaultVersion()
	}
	if c.Operators == nil {
		c.Operators = registeredOperators()
	}
	if c.ParseSpec == nil {
		c.ParseSpec = wired.parseSpec
	}
	if c.BuildGraph == nil {
		c.BuildGraph = wired.buildGraph
	}
	if c.RunTask == nil {
		c.RunTask = wired.runTask
		if c.NewExchange == nil {
			c.NewExchange = wired.newExchange
		}
	}
	if c.AllowedPaths != nil {
		c.OpenStore = pathStore(c.OpenStore, c.AllowedPaths)
		if c.Builder != nil {
			c.Builder = pathBuilder{Builder: c.Builder, roots: c.AllowedPaths}
		}
	}
	if c.DataAddr == "" {
		c.DataAddr = DefaultDataAddr
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.Slots == 0 {
		c.Slots = runtime.NumCPU()
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "worker"
		}
		var b [3]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead of erroring on Linux)
		c.ID = host + "-" + hex.EncodeToString(b[:])
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ReconnectGrace == 0 {
		c.ReconnectGrace = DefaultReconnectGrace
	}
}

// MaxSlots bounds Slots; the coordinator refuses a registration with more
// (coordinator.MaxWorkerSlots, the same number).
const MaxSlots = 1024

// Validate reports every problem with the config (after defaults).
func (c *Config) Validate() error {
	var errs []error
	if c.CoordinatorAddr == "" {
		errs = append(errs, errors.New("worker: the coordinator address is required"))
	}
	if c.Slots < 1 || c.Slots > MaxSlots {
		errs = append(errs, fmt.Errorf("worker: slots must be 1 to %d, got %d", MaxSlots, c.Slots))
	}
	if len(c.ID) > 256 || strings.ContainsFunc(c.ID, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		errs = append(errs, fmt.Errorf("worker: id %.64q must be at most 256 bytes with no space or control character (the coordinator refuses it)", c.ID))
	}
	if c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin {
		errs = append(errs, fmt.Errorf("worker: reconnect backoff must satisfy 0 < min (%s) <= max (%s)", c.ReconnectMin, c.ReconnectMax))
	}
	if c.MemoryLimit < 0 {
		errs = append(errs, fmt.Errorf("worker: memory limit must not be negative, got %d", c.MemoryLimit))
	}
	if c.ParseSpec == nil {
		errs = append(errs, errors.New("worker: ParseSpec is required (spec.Parse)"))
	}
	if c.BuildGraph == nil {
		errs = append(errs, errors.New("worker: BuildGraph is required (graph.Build)"))
	}
	if c.RunTask == nil {
		errs = append(errs, errors.New("worker: RunTask is required (task.Run)"))
	}
	return errors.Join(errs...)
}
