package command

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/auth"
)

// restServerFlags secure the coordinator's REST API and web UI.
type restServerFlags struct {
	tokensFile string
	insecure   bool
	// HTTPS: certificate, key, and the CA client certificates must be
	// signed by (optional).
	tlsCert, tlsKey, clientCA string
}

func addRESTServerFlags(c *cobra.Command, f *restServerFlags) {
	c.Flags().StringVar(&f.tokensFile, "tokens-file", "", "file of REST API tokens, one `NAME ROLE sha256:HEX` a line, read again when it changes (make lines with `weir token create`)")
	c.Flags().BoolVar(&f.insecure, "insecure", false, "serve the REST API and web UI without authentication: anyone who reaches --http-addr may submit and cancel jobs")
	c.Flags().StringVar(&f.tlsCert, "http-tls-cert", "", "PEM certificate (chain) to serve the REST API and web UI over HTTPS with, read again when it changes; needs --http-tls-key")
	c.Flags().StringVar(&f.tlsKey, "http-tls-key", "", "PEM private key of --http-tls-cert")
	c.Flags().StringVar(&f.clientCA, "http-client-ca", "", "with HTTPS: PEM CA file; every REST client must present a certificate signed by it (tokens still decide the role)")
}

// scheme is how clients reach the REST API.
func (f *restServerFlags) scheme() string {
	if f.tlsCert != "" {
		return "https"
	}
	return "http"
}

// errNoAuth is the refusal to start a coordinator nobody said how to secure.
var errNoAuth = errors.New("the REST API needs --tokens-file FILE (make a token with `weir token create NAME --role admin --tokens-file FILE`), " +
	"or --insecure to serve it without authentication (docs/security.md)")

// announce says in the log, once the coordinator serves, that it takes no
// token.
func (f *restServerFlags) announce(logger *slog.Logger, httpAddr string) {
	if f.insecure {
		logger.Warn("INSECURE: the REST API and web UI take no token (--insecure); anyone who reaches them can submit, cancel and read every job", "http", httpAddr)
	}
}

// apply sets the coordinator's authentication from the flags: secure by
// default, --insecure only when asked for, and said so in the log.
func (f *restServerFlags) apply(cfg *coordinator.Config, logger *slog.Logger) error {
	switch {
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usagef("--http-tls-cert and --http-tls-key go together")
	case f.clientCA != "" && f.tlsCert == "":
		return usagef("--http-client-ca needs HTTPS: --http-tls-cert and --http-tls-key")
	}
	if f.tlsCert != "" {
		tc, err := auth.ServerTLS(f.tlsCert, f.tlsKey, f.clientCA, logger.With("component", "tls"))
		if err != nil {
			return usageError{fmt.Errorf("--http-tls-cert: %w", err)}
		}
		cfg.HTTPTLS = tc
	}
	switch {
	case f.insecure && f.tokensFile != "":
		return usagef("--insecure and --tokens-file exclude each other")
	case f.insecure:
		return nil
	case f.tokensFile == "":
		return usageError{errNoAuth}
	}
	t, err := auth.Open(f.tokensFile, logger.With("component", "auth"))
	if err != nil {
		return usageError{fmt.Errorf("--tokens-file: %w", err)}
	}
	logger.Info("REST API needs a token", "tokens_file", f.tokensFile, "tokens", t.Len())
	cfg.Tokens = t
	return nil
}
