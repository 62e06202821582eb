package command

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCancelCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a running job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl := g.client()
			id, err := resolveJob(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			if err := cl.Cancel(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "cancelling %s\n", id)
			return nil
		},
	}
	addClientFlags(c, g)
	return c
}
