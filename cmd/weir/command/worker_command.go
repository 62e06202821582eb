package command

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/tlsconf"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/builder"
)

func newWorkerCommand(g *globals) *cobra.Command {
	var (
		cfg          worker.Config
		logLevel     string
		logFormat    string
		pprofAddr    string
		gcPercent    int
		allowed      []string
		memLimit     string
		tlsFiles     tlsconf.Files
		tokenFile    string
		drainTimeout time.Duration
	)
	c := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker: registers its slots with the coordinator and runs subtasks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(g.stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			stopPprof, err := startPprof(pprofAddr, logger)
			if err != nil {
				return err
			}
			defer stopPprof()
			cfg.Logger = logger
			if cfg.AllowedPaths, err = spec.ParseRoots(allowed); err != nil {
				return usageError{fmt.Errorf("--allowed-paths: %w", err)}
			}
			if cfg.TLS, err = loadTLS(tlsFiles, logger); err != nil {
				return err
			}
			if tokenFile != "" {
				if cfg.MetricsTokens, err = readMetricsTokens(tokenFile); err != nil {
					return usageError{err}
				}
			}
			cfg.Builder = builder.New()
			// A worker's live heap is small next to what it allocates per
			// record, so Go's default GOGC=100 collects far too often
			// (measured: ~35% of CPU in the datagen benchmark). GOGC, when
			// set, wins.
			if _, set := os.LookupEnv("GOGC"); !set {
				debug.SetGCPercent(gcPercent)
			}
			gomemlimit := os.Getenv("GOMEMLIMIT")
			limit, source, err := worker.ResolveMemoryLimit(memLimit, gomemlimit, worker.DefaultCgroupRoot)
			if err != nil {
				return usageError{err}
			}
			worker.ApplyMemoryLimit(limit, gomemlimit)
			cfg.MemoryLimit = limit
			logger.Info("memory limit", "bytes", limit, "from", source)
			w, err := worker.New(cfg)
			if err != nil {
				return usageError{err}
			}
			warnInsecure(logger, cfg.TLS, insecureWorker)
			if err := w.Start(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "worker %s: %d slots, coordinator %s\n", w.ID(), cfg.Slots, cfg.CoordinatorAddr)
			err = runUntilDrained(cmd.Context(), g, w, drainTimeout, logger)
			w.Stop()
			return err
		},
	}
	c.Flags().DurationVar(&drainTimeout, "drain-timeout", 5*time.Minute, "after SIGTERM, exit at the latest this long into the drain, even with subtasks left (0: no limit; docs/failover.md)")
	// --coordinator is a REST URL for every client verb; the worker's is
	// the coordinator's gRPC address, a different thing under its own name.
	c.Flags().StringVar(&cfg.CoordinatorAddr, "coordinator-grpc", "127.0.0.1:6123", "coordinator gRPC address HOST:PORT (its --grpc-addr), or HOST:PORT,HOST:PORT for coordinators with etcd")
	deprecatedAlias(c, "coordinator", "coordinator-grpc")
	c.Flags().IntVar(&cfg.Slots, "slots", 4, "task slots this worker offers")
	c.Flags().StringVar(&cfg.ID, "id", "", "worker id (default: host name and a random suffix)")
	c.Flags().StringVar(&cfg.DataAddr, "data-addr", "127.0.0.1:0", "data exchange address other workers connect to")
	c.Flags().StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:0", "/metrics and /healthz address")
	c.Flags().StringVar(&tokenFile, "metrics-token-file", "", "file of bearer tokens (one a line) that /metrics wants; default: /metrics is open")
	c.Flags().DurationVar(&cfg.ReconnectGrace, "reconnect-grace", 30*time.Second, "keep running the subtasks this long after the session with the coordinator breaks (negative: cancel them at once)")
	addAllowedPathsFlag(c, &allowed)
	addTLSFlags(c, &tlsFiles)
	addLogFlags(c, &logLevel, &logFormat)
	addPprofFlag(c, &pprofAddr)
	c.Flags().IntVar(&gcPercent, "gc-percent", 400, "Go GC target percentage (ignored when GOGC is set)")
	c.Flags().StringVar(&memLimit, "memory-limit", worker.MemoryLimitAuto, "memory limit (e.g. 1536MiB, 2GiB; none): the Go runtime's soft limit, and what heap warnings compare with; auto: the cgroup's limit (ignored when GOMEMLIMIT is set)")
	addConfigFlag(c)
	return c
}

// DefaultAllowedPaths is where jobs may write when --allowed-paths is not
// given: the directory of the coordinator's default checkpoint storage.
const DefaultAllowedPaths = "./.weir"

// addAllowedPathsFlag adds --allowed-paths, which the coordinator and the
// workers both take: file sinks and checkpoint storage only under these
// roots (docs/security.md).
func addAllowedPathsFlag(c *cobra.Command, allowed *[]string) {
	c.Flags().StringSliceVar(allowed, "allowed-paths", []string{DefaultAllowedPaths},
		"DIR,hdfs://HOST:PORT/PREFIX,…: file sinks and checkpoint storage only under these roots (relative to the working directory; docs/security.md)")
}

// readMetricsTokens reads a worker's --metrics-token-file: one token a
// line; blank lines and lines starting with # are skipped.
func readMetricsTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--metrics-token-file: %w", err)
	}
	var tokens []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			tokens = append(tokens, line)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("--metrics-token-file %s: no token in it", path)
	}
	return tokens, nil
}
