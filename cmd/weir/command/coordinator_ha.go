package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/ha"
	"github.com/weir-stream/weir/internal/netaddr"
	"github.com/weir-stream/weir/internal/tlsconf"
)

type haFlags struct {
	etcd   []string
	prefix string
	ttl    time.Duration
	// tls is the client side of etcd's TLS; user and passwordFile its
	// authentication.
	tls          tlsconf.Files
	user         string
	passwordFile string
}

// etcdAuth turns the etcd flags into ha.Config's TLS and credentials.
func (hf haFlags) etcdAuth(cfg *ha.Config, logger *slog.Logger) error {
	if err := hf.tls.Validate(); err != nil {
		return usageError{fmt.Errorf("--etcd-cert, --etcd-key, --etcd-ca: %w", err)}
	}
	if hf.tls.Enabled() {
		s, err := tlsconf.Load(hf.tls, logger.With("component", "etcd-tls"))
		if err != nil {
			return usageError{fmt.Errorf("etcd TLS: %w", err)}
		}
		cfg.TLS = s.ClientConfig("")
	}
	if (hf.user == "") != (hf.passwordFile == "") {
		return usagef("--etcd-user and --etcd-password-file go together")
	}
	if hf.user != "" {
		pw, err := os.ReadFile(hf.passwordFile)
		if err != nil {
			return usageError{fmt.Errorf("--etcd-password-file: %w", err)}
		}
		cfg.Username, cfg.Password = hf.user, strings.TrimRight(string(pw), "\r\n")
		if cfg.Password == "" {
			return usagef("--etcd-password-file %s is empty", hf.passwordFile)
		}
	}
	return nil
}

// runHA runs one of several coordinators sharing etcd: it stands by —
// answering /healthz and redirecting the REST API to the leader — until it
// is elected, then runs the coordinator with the etcd job store and
// fencing. A leader that loses its lease stops at once and exits 1 (start
// it again to stand by); Ctrl-C resigns, so a standby takes over at once.
func runHA(ctx context.Context, g *globals, cfg coordinator.Config, hf haFlags, logger *slog.Logger) error {
	if hf.ttl < time.Second {
		return usagef("--lease-ttl must be at least 1s, got %s", hf.ttl)
	}
	grpcAddr, err := netaddr.Concrete(cfg.GRPCAddr)
	if err != nil {
		return usagef("--grpc-addr %q: %v", cfg.GRPCAddr, err)
	}
	cfg.GRPCAddr = grpcAddr
	hl, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w", cfg.HTTPAddr, err)
	}
	cfg.HTTPAddr = hl.Addr().String()
	self := ha.Info{HTTPAddr: netaddr.Advertised(cfg.HTTPAddr), GRPCAddr: netaddr.Advertised(cfg.GRPCAddr)}
	self.ID = self.HTTPAddr

	hcfg := ha.Config{Endpoints: hf.etcd, Prefix: hf.prefix, TTL: hf.ttl, Logger: logger}
	if err := hf.etcdAuth(&hcfg, logger); err != nil {
		hl.Close()
		return err
	}
	hc, err := ha.Connect(ctx, hcfg)
	if err != nil {
		hl.Close()
		return err
	}
	warnInsecure(logger, cfg.TLS, insecureCoordinator)
	defer hc.Close()
	standby := &http.Server{Handler: ha.StandbyHandler(hc, self), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = standby.Serve(hl) }()
	fmt.Fprintf(g.stdout, "coordinator %s: standing by (REST on http://%s redirects to the leader)\n", self.ID, cfg.HTTPAddr)

	// A standby whose own session dies (etcd unreachable longer than the
	// TTL) has nothing to stop: it campaigns again with a new session.
	var leader *ha.Leader
	for {
		leader, err = hc.Campaign(ctx, self)
		if err == nil || ctx.Err() != nil {
			break
		}
		logger.Warn("campaign failed; standing by and trying again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = standby.Shutdown(sctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	specs, err := coordinator.OpenStorage(cfg.CheckpointStorage)
	if err != nil {
		_ = leader.Resign(context.Background())
		return usageError{fmt.Errorf("checkpoint storage: %w", err)}
	}
	defer specs.Close()
	cfg.JobStore = ha.NewJobStore(leader, specs)
	cfg.Fence = leader
	cfg.Identity = &api.CoordinatorInfo{ID: self.ID, Role: "leader", FencingToken: leader.Token()}
	co, err := coordinator.New(cfg)
	if err != nil {
		_ = leader.Resign(context.Background())
		return usageError{err}
	}
	if err := co.Start(); err != nil {
		_ = leader.Resign(context.Background())
		return err
	}
	logger.Info("coordinator leads", "grpc", co.GRPCAddr(), "http", co.HTTPAddr(), "token", leader.Token())
	fmt.Fprintf(g.stdout, "coordinator %s: leading; REST API and web UI on http://%s, workers connect to %s\n", self.ID, co.HTTPAddr(), co.GRPCAddr())
	select {
	case <-ctx.Done():
		co.Stop()
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := leader.Resign(rctx); err != nil {
			logger.Warn("resigning", "err", err)
		}
		return nil
	case <-leader.Lost():
		co.Stop()
		return errors.New("lost the leadership (the etcd lease expired or etcd is unreachable): stopped at once; start the coordinator again to stand by")
	}
}
