package command

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/api"
)

// clientConn is how a client verb authenticates to the REST API: a bearer
// token from --token, else WEIR_TOKEN.
type clientConn struct {
	token string
	opts  []api.Option
}

// addConnFlags adds --token to a client verb and resolves the connection
// settings before it runs. The token's default is not a flag default, so
// --help never prints it.
func addConnFlags(c *cobra.Command, g *globals) {
	c.Flags().StringVar(&g.conn.token, "token", "", "REST API bearer token (default from WEIR_TOKEN; docs/cli.md)")
	c.PreRunE = func(cmd *cobra.Command, _ []string) error { return g.conn.resolve(cmd) }
}

func (cc *clientConn) resolve(cmd *cobra.Command) error {
	tok := cc.token
	if !cmd.Flags().Changed("token") {
		tok = os.Getenv("WEIR_TOKEN")
	}
	cc.opts = nil
	if tok != "" {
		cc.opts = append(cc.opts, api.WithToken(tok))
	}
	return nil
}
