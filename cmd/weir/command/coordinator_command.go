package command

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/connectors/kafka"
	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
	"github.com/weir-stream/weir/internal/tlsconf"
)

func newCoordinatorCommand(g *globals) *cobra.Command {
	var (
		cfg                 coordinator.Config
		logLevel, logFormat string
		pprofAddr           string
		hf                  haFlags
		allowed             []string
		tlsFiles            tlsconf.Files
		rf                  restServerFlags
	)
	c := &cobra.Command{
		Use:   "coordinator",
		Short: "Run the coordinator: REST API and web UI, scheduler, worker registry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(g.stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			// 0 would silently mean the default in the Config.
			if cfg.RetainedJobs == 0 || cfg.JobRetention == 0 {
				return usagef("--retained-jobs and --job-retention must not be 0 (negative: no limit)")
			}
			if cfg.ScheduleTimeout == 0 {
				return usagef("--schedule-timeout must not be 0 (negative: wait for slots forever)")
			}
			stopPprof, err := startPprof(pprofAddr, logger)
			if err != nil {
				return err
			}
			defer stopPprof()
			cfg.Logger = logger
			cfg.ParseSpec = registry.ParseSpec
			cfg.BuildGraph = graph.Build
			cfg.CheckJob = kafka.CheckJob
			cfg.CheckTopics = kafka.CheckSourceTopics
			if cfg.AllowedPaths, err = spec.ParseRoots(allowed); err != nil {
				return usageError{fmt.Errorf("--allowed-paths: %w", err)}
			}
			if cfg.TLS, err = loadTLS(tlsFiles, logger); err != nil {
				return err
			}
			if err := rf.apply(&cfg, logger); err != nil {
				return err
			}
			if len(hf.etcd) > 0 {
				return runHA(cmd.Context(), g, cfg, hf, logger, rf)
			}
			co, err := coordinator.New(cfg)
			if err != nil {
				return usageError{err}
			}
			warnInsecure(logger, cfg.TLS, insecureCoordinator)
			if err := co.Start(); err != nil {
				return err
			}
			logger.Info("coordinator started", "grpc", co.GRPCAddr(), "http", co.HTTPAddr())
			rf.announce(logger, co.HTTPAddr())
			fmt.Fprintf(g.stdout, "coordinator: REST API and web UI on %s://%s, workers connect to %s\n", rf.scheme(), co.HTTPAddr(), co.GRPCAddr())
			<-cmd.Context().Done()
			co.Stop()
			return nil
		},
	}
	c.Flags().StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:6123", "address workers connect to (gRPC)")
	c.Flags().StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8081", "REST API, web UI and /metrics address")
	c.Flags().DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", time.Second, "how often workers heartbeat")
	c.Flags().DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", 5*time.Second, "a silent worker is lost after this long")
	c.Flags().DurationVar(&cfg.ScheduleTimeout, "schedule-timeout", coordinator.DefaultScheduleTimeout, "a job that waits this long for free slots fails; a job placed again after a failure asks its restart strategy instead, each timeout counting as a failure (negative: wait forever)")
	c.Flags().StringVar(&cfg.CheckpointStorage, "checkpoint-storage", coordinator.DefaultCheckpointStorage, "root URI of checkpoints and savepoints of jobs whose spec names no storage")
	addAllowedPathsFlag(c, &allowed)
	addTLSFlags(c, &tlsFiles)
	addRESTServerFlags(c, &rf)
	c.Flags().IntVar(&cfg.RetainedJobs, "retained-jobs", coordinator.DefaultRetainedJobs, "ended jobs kept, the most recently ended; older ones are forgotten (negative: no limit)")
	c.Flags().DurationVar(&cfg.JobRetention, "job-retention", coordinator.DefaultJobRetention, "an ended job is forgotten this long after it ended (negative: never)")
	c.Flags().StringSliceVar(&hf.etcd, "etcd", nil, "etcd endpoints HOST:PORT,…: run as one of several coordinators, the elected leader works and the others stand by (docs/ha.md)")
	c.Flags().StringVar(&hf.prefix, "etcd-prefix", "/weir", "prefix of weir's keys in etcd")
	c.Flags().StringVar(&hf.tls.Cert, "etcd-cert", "", "with --etcd: PEM client certificate to present to etcd (with --etcd-key and --etcd-ca)")
	c.Flags().StringVar(&hf.tls.Key, "etcd-key", "", "with --etcd: PEM private key of --etcd-cert")
	c.Flags().StringVar(&hf.tls.CA, "etcd-ca", "", "with --etcd: PEM CA certificate(s) etcd's server certificate must chain to; connect to etcd with TLS")
	c.Flags().StringVar(&hf.user, "etcd-user", "", "with --etcd: etcd user (with --etcd-password-file), when etcd's authentication is on")
	c.Flags().StringVar(&hf.passwordFile, "etcd-password-file", "", "with --etcd: file holding the password of --etcd-user")
	c.Flags().DurationVar(&hf.ttl, "lease-ttl", 5*time.Second, "with --etcd: a dead leader is replaced after about this long (whole seconds)")
	addLogFlags(c, &logLevel, &logFormat)
	addPprofFlag(c, &pprofAddr)
	addConfigFlag(c)
	return c
}
