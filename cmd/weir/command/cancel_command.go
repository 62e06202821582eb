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
			if err := g.client().Cancel(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "cancelling %s\n", args[0])
			return nil
		},
	}
	addClientFlags(c, g)
	return c
}
