package command

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// newDevRegistryCommand runs franz-go's in-memory schema registry (the
// Confluent REST API), for jobs with format avro, protobuf or json_schema.
func newDevRegistryCommand(g *globals) *cobra.Command {
	var addr string
	c := &cobra.Command{
		Use:   "schema-registry",
		Short: "Run only a development schema registry (Confluent REST API, in memory)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("schema registry: listen on %s: %w", addr, err)
			}
			srv := &http.Server{Handler: srfake.NewRegistry().Handler(), ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(l) }()
			fmt.Fprintf(g.stdout, "schema registry listening on http://%s (schemas in memory)\n", l.Addr())
			select {
			case <-cmd.Context().Done():
				_ = srv.Close()
				<-errc
				return nil
			case err := <-errc:
				if errors.Is(err, http.ErrServerClosed) {
					return nil
				}
				return fmt.Errorf("schema registry: %w", err)
			}
		},
	}
	c.Flags().StringVar(&addr, "addr", defaultRegistryAddr, "listen address")
	return c
}

// defaultRegistryAddr is beside the coordinator's 8081 (the port a
// Confluent registry usually has).
const defaultRegistryAddr = "127.0.0.1:8085"
