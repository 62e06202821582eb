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
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"

	"github.com/weir-stream/weir/internal/netaddr"
	"github.com/weir-stream/weir/internal/tlsconf"
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
	// TLS, when set, serves clients over TLS with this certificate and
	// requires a client certificate signed by its CA (etcd's
	// --client-cert-auth). The peer URL stays plaintext on 127.0.0.1:
	// the single member has no peers.
	TLS tlsconf.Files
	// User and Password, when set, turn etcd's authentication on at the
	// first start: the user may read and write every key (the root user
	// gets the same password). A data directory that already has auth on
	// keeps its users.
	User, Password string
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
	scheme := "http"
	if cfg.TLS.Enabled() {
		if err := cfg.TLS.Validate(); err != nil {
			s.cleanup()
			return nil, fmt.Errorf("dev etcd: %w", err)
		}
		scheme = "https"
		ec.ClientTLSInfo = transport.TLSInfo{CertFile: cfg.TLS.Cert, KeyFile: cfg.TLS.Key,
			TrustedCAFile: cfg.TLS.CA, ClientCertAuth: true}
	}
	if (cfg.User == "") != (cfg.Password == "") {
		s.cleanup()
		return nil, errors.New("dev etcd: a user and a password go together")
	}
	// bcrypt's default cost takes a second or more per password check
	// under the race detector on a loaded machine, longer than a client's
	// dial timeout; a development member needs no slow hashing (etcd's
	// minimum, 4).
	ec.BcryptCost = 4
	cu := url.URL{Scheme: scheme, Host: client}
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
	if cfg.User != "" {
		if err := enableAuth(e, cfg.User, cfg.Password); err != nil {
			s.Close()
			return nil, fmt.Errorf("dev etcd: turn authentication on: %w", err)
		}
	}
	return s, nil
}

// enableAuth creates root and user with password, lets user read and
// write every key and turns authentication on; a no-op when it is on.
func enableAuth(e *embed.Etcd, user, password string) error {
	cli := v3client.New(e.Server)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := cli.AuthStatus(ctx); err != nil {
		return err
	} else if st.Enabled {
		return nil
	}
	for _, u := range []string{"root", user} {
		if _, err := cli.UserAdd(ctx, u, password); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
			return fmt.Errorf("user %s: %w", u, err)
		}
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		return fmt.Errorf("grant root: %w", err)
	}
	if user != "root" {
		if _, err := cli.RoleAdd(ctx, "weir"); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
			return fmt.Errorf("role weir: %w", err)
		}
		// From the smallest key on (range end "\x00"): every key.
		if _, err := cli.RoleGrantPermission(ctx, "weir", "\x00", "\x00", clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
			return fmt.Errorf("role weir: %w", err)
		}
		if _, err := cli.UserGrantRole(ctx, user, "weir"); err != nil {
			return fmt.Errorf("grant %s: %w", user, err)
		}
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("enable: %w", err)
	}
	return nil
}

// Endpoint is the client address, host:port (with Config.TLS, clients
// connect with TLS).
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
