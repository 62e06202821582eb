package command

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/internal/tlsconf"
)

// addTLSFlags adds --tls-cert, --tls-key and --tls-ca, the cluster's
// mutual TLS, which the coordinator and the workers take alike.
func addTLSFlags(c *cobra.Command, f *tlsconf.Files) {
	c.Flags().StringVar(&f.Cert, "tls-cert", "", "PEM certificate (chain) of this process for the cluster's mutual TLS: control plane and data plane (with --tls-key and --tls-ca; read again when it changes; docs/security.md)")
	c.Flags().StringVar(&f.Key, "tls-key", "", "PEM private key of --tls-cert")
	c.Flags().StringVar(&f.CA, "tls-ca", "", "PEM certificate(s) of the cluster's CA: peers must present a certificate it signed")
}

// Warnings of a process that runs without the cluster's TLS: what is open
// to whom.
const (
	insecureCoordinator = "the control plane is plaintext and unauthenticated: any process that reaches --grpc-addr can register as a worker and be sent job specs"
	insecureWorker      = "the session with the coordinator and the data plane are plaintext and unauthenticated: anyone who reaches --data-addr can send records into the jobs"
)

// warnInsecure logs, once the process's other flags have passed, that it
// runs without the cluster's TLS.
func warnInsecure(logger *slog.Logger, s *tlsconf.Source, what string) {
	if s == nil {
		logger.Warn("INSECURE: no --tls-cert, " + what + " (docs/security.md)")
	}
}

// loadTLS loads the cluster's TLS files; nil when none are given.
func loadTLS(f tlsconf.Files, logger *slog.Logger) (*tlsconf.Source, error) {
	if err := f.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("--tls-cert, --tls-key, --tls-ca: %w", err)}
	}
	if !f.Enabled() {
		return nil, nil
	}
	s, err := tlsconf.Load(f, logger.With("component", "tls"))
	if err != nil {
		return nil, usageError{err}
	}
	leaf := s.Leaf()
	logger.Info("cluster mutual TLS", "cert", f.Cert, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter, "ca", f.CA)
	return s, nil
}
