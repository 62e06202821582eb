// Package tlsconf is the cluster's mutual TLS: every gRPC server and client
// inside a weir cluster (coordinator ↔ worker control plane, worker ↔
// worker data plane, coordinators → etcd) takes its TLS settings from one
// Source, which reads a certificate, its key and the cluster's CA from
// files and reads them again when they change on disk.
//
// Both sides present a certificate and verify the other's against the CA
// (TLS 1.3 only): a process without a certificate from the cluster's CA
// cannot complete a handshake, so it cannot register, open a data channel
// or be sent a job spec. A client also checks that the server's
// certificate names the host it dialed (its DNS names or IP addresses).
//
// Reloading is checked on each handshake: the three files are stat-ed and,
// when one changed (modification time, size, or a new file renamed over
// it), parsed again. Connections already open keep the certificate they
// started with; gRPC's connections are long-lived, so a rotation takes
// effect on the next connection each process makes. A change that does not
// parse (a half-written file, a key that does not match the certificate)
// keeps the previous files in use and is logged; the next handshake tries
// again.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Files names the PEM files of one process's cluster identity.
type Files struct {
	// Cert is the process's certificate chain (leaf first), Key its
	// private key.
	Cert, Key string
	// CA holds the certificates of the cluster's CA: peers must present a
	// certificate it signed.
	CA string
}

// Enabled reports whether any file is named.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Validate reports a partial set: the three files go together.
func (f Files) Validate() error {
	if !f.Enabled() {
		return nil
	}
	var missing []string
	for _, m := range []struct{ name, v string }{{"certificate", f.Cert}, {"key", f.Key}, {"CA", f.CA}} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tls: a certificate, its key and the cluster's CA go together; missing: %v", missing)
	}
	return nil
}

// Source serves the current certificate and CA pool of a set of Files.
// A nil *Source means plaintext: its methods return the insecure options.
type Source struct {
	files Files
	log   *slog.Logger

	mu     sync.Mutex
	stamps [3]os.FileInfo
	cert   *tls.Certificate
	pool   *x509.CertPool
	leaf   *x509.Certificate
}

// Load reads the files once and returns a Source that reads them again
// when they change. logger may be nil.
func Load(f Files, logger *slog.Logger) (*Source, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if !f.Enabled() {
		return nil, errors.New("tls: no certificate, key or CA given")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{files: f, log: logger}
	stamps := s.stat()
	if err := s.load(stamps); err != nil {
		return nil, err
	}
	return s, nil
}

// Files are the files the Source reads.
func (s *Source) Files() Files { return s.files }

func (s *Source) stat() [3]os.FileInfo {
	var st [3]os.FileInfo
	for i, p := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		st[i], _ = os.Stat(p)
	}
	return st
}

func changed(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a != b
	}
	return !os.SameFile(a, b) || !a.ModTime().Equal(b.ModTime()) || a.Size() != b.Size()
}

// load parses the files; on success they become current. Called with mu
// held, or before s is shared.
func (s *Source) load(stamps [3]os.FileInfo) error {
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("tls: certificate %s with key %s: %w", s.files.Cert, s.files.Key, err)
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return fmt.Errorf("tls: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("tls: CA %s holds no PEM certificate", s.files.CA)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("tls: certificate %s: %w", s.files.Cert, err)
		}
	}
	s.cert, s.pool, s.leaf, s.stamps = &cert, pool, leaf, stamps
	return nil
}

// current returns the certificate and pool, reloading them first when a
// file changed since they were read.
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	stamps := s.stat()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range stamps {
		if changed(stamps[i], s.stamps[i]) {
			if err := s.load(stamps); err != nil {
				s.log.Warn("TLS files changed but do not load; still using the previous ones", "err", err)
			} else {
				s.log.Info("TLS files reloaded", "cert", s.files.Cert, "subject", s.leaf.Subject.String(),
					"serial", s.leaf.SerialNumber.String(), "not_after", s.leaf.NotAfter.Format(time.RFC3339))
			}
			break
		}
	}
	return s.cert, s.pool
}

// Leaf is the certificate in use (as of the last handshake or reload).
func (s *Source) Leaf() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaf
}

// ServerConfig is the tls.Config of a server: TLS 1.3, a client
// certificate signed by the CA required, both read per connection.
func (s *Source) ServerConfig() *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS13}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := s.current()
		return &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{*cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		}, nil
	}
	return base
}

// ClientConfig is the tls.Config of a client for one connection: TLS
// 1.3, its certificate presented (read per handshake), the server's
// verified against the CA as of now and against serverName (the dialed
// host; gRPC fills in an empty one from the target).
func (s *Source) ClientConfig(serverName string) *tls.Config {
	_, pool := s.current()
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
	}
}

// clientCreds are gRPC transport credentials that build the TLS config at
// each handshake: gRPC keeps a connection's credentials for its whole
// life, and a worker keeps its connections for its whole life, so a
// config fixed at dial time would never see a new CA.
type clientCreds struct {
	credentials.TransportCredentials // Info, ServerHandshake (unused)
	s                                *Source
}

func (c clientCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(c.s.ClientConfig("")).ClientHandshake(ctx, authority, raw)
}

func (c clientCreds) Clone() credentials.TransportCredentials {
	return clientCreds{TransportCredentials: c.TransportCredentials.Clone(), s: c.s}
}

// serverCreds log a refused handshake: gRPC drops it silently, and the
// operator of a cluster whose worker cannot connect needs to see why
// (another CA, no certificate, plaintext) on the side that refused.
type serverCreds struct {
	credentials.TransportCredentials
	s *Source
}

func (c serverCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		c.s.log.Warn("refused a connection: TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
	}
	return conn, info, err
}

func (c serverCreds) Clone() credentials.TransportCredentials {
	return serverCreds{TransportCredentials: c.TransportCredentials.Clone(), s: c.s}
}

// ServerOptions are the gRPC server options of a listener: TLS
// credentials, none for a nil Source.
func (s *Source) ServerOptions() []grpc.ServerOption {
	if s == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(serverCreds{TransportCredentials: credentials.NewTLS(s.ServerConfig()), s: s})}
}

// DialOption is the transport credentials of a gRPC client: TLS, or
// plaintext for a nil Source.
func (s *Source) DialOption() grpc.DialOption {
	if s == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(clientCreds{TransportCredentials: credentials.NewTLS(s.ClientConfig("")), s: s})
}
