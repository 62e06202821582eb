// Package devetcd runs a single-member etcd server inside the process, for
// `weir dev` and for tests: the coordinators' high-availability code path
// (leader election, fenced writes, the job store) then runs against a real
// etcd speaking its real gRPC API, the same one production clusters use.
//
// It is one member with its data in a directory of ours (or a temporary
// one), listening on 127.0.0.1. It is not a way to run production etcd:
// run etcd itself, three or five members, and give the coordinators their
// endpoints (docs/ha.md).
package devetcd

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/weir-stream/weir/internal/netaddr"
)

// Config configures Start.
type Config struct {
	// ClientAddr is where clients connect, host:port (port 0 picks one).
	ClientAddr string
	// PeerAddr is the member's peer address (default 127.0.0.1:0).
	PeerAddr string
	// DataDir keeps the data across restarts (default: a temporary
	// directory removed by Close).
	DataDir string
	// LogLevel of etcd's own zap logger, written to stderr (default:
	// none; etcd logs even a clean shutdown at level error).
	LogLevel string
}

// Server is a running member.
type Server struct {
	e       *embed.Etcd
	tmp     string
	clients string
}

// Start starts the member and waits until it serves clients (at most 30 s).
func Start(cfg Config) (*Server, error) {
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:0"
	}
	if cfg.PeerAddr == "" {
		cfg.PeerAddr = "127.0.0.1:0"
	}
	s := &Server{}
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "weir-etcd-")
		if err != nil {
			return nil, fmt.Errorf("dev etcd: %w", err)
		}
		s.tmp, cfg.DataDir = dir, dir
	}
	// etcd needs concrete ports to advertise: resolve port 0 first.
	client, err := netaddr.Concrete(cfg.ClientAddr)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("dev etcd: client address %q: %w", cfg.ClientAddr, err)
	}
	peer, err := netaddr.Concrete(cfg.PeerAddr)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("dev etcd: peer address %q: %w", cfg.PeerAddr, err)
	}
	ec := embed.NewConfig()
	ec.Name = "weir-dev"
	ec.Dir = cfg.DataDir
	if cfg.LogLevel != "" {
		ec.LogLevel = cfg.LogLevel
	} else {
		ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	}
	cu := url.URL{Scheme: "http", Host: client}
	pu := url.URL{Scheme: "http", Host: peer}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	ec.InitialCluster = ec.Name + "=" + pu.String()
	e, err := embed.StartEtcd(ec)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("dev etcd on %s (data in %s): %w", client, cfg.DataDir, err)
	}
	s.e = e
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		s.Close()
		return nil, fmt.Errorf("dev etcd on %s: %w", client, err)
	case <-time.After(30 * time.Second):
		s.Close()
		return nil, errors.New("dev etcd: not ready after 30s")
	}
	s.clients = client
	return s, nil
}

// Endpoint is the client address, host:port.
func (s *Server) Endpoint() string { return s.clients }

// Err reports a fatal error of the running server.
func (s *Server) Err() <-chan error { return s.e.Err() }

// Close stops the member and removes a temporary data directory.
func (s *Server) Close() {
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
		s.tmp = ""
	}
}
