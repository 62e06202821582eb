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
}

func addRESTServerFlags(c *cobra.Command, f *restServerFlags) {
	c.Flags().StringVar(&f.tokensFile, "tokens-file", "", "file of REST API tokens, one `NAME ROLE sha256:HEX` a line, read again when it changes (make lines with `weir token create`)")
	c.Flags().BoolVar(&f.insecure, "insecure", false, "serve the REST API and web UI without authentication: anyone who reaches --http-addr may submit and cancel jobs")
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
