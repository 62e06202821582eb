package command

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/api"
)

func newSavepointsCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "savepoints JOB",
		Short: "List a job's savepoints: id, status, location or failure",
		Long: "List the savepoints requested of a job, oldest first: the id (sp-<n>, also the name of\n" +
			"its directory), status, whether it stopped the job, when it was requested, and its\n" +
			"location (the argument of weir submit --from-savepoint) or why it failed.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.printer()
			if err != nil {
				return err
			}
			cl := g.client()
			id, err := resolveJob(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			sps, err := cl.Savepoints(cmd.Context(), id)
			if err != nil {
				return err
			}
			if p.format == "json" {
				if sps == nil {
					sps = []api.Savepoint{}
				}
				return p.print(sps, nil, nil)
			}
			rows := make([][]string, 0, len(sps))
			for _, s := range sps {
				stop := "-"
				if s.Stop {
					stop = "stop"
				}
				where := s.Location
				if s.Failure != "" {
					where = s.Failure
				}
				if where == "" {
					where = "-"
				}
				rows = append(rows, []string{s.RequestID, s.Status, stop, s.RequestedAt.Local().Format(time.DateTime), where})
			}
			return p.print(nil, []string{"ID", "STATUS", "STOP", "REQUESTED", "LOCATION"}, rows)
		},
	}
	addClientFlags(c, g)
	addOutputFlag(c, g)
	return c
}
