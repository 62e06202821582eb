package command

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func newJobsCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "jobs",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.printer()
			if err != nil {
				return err
			}
			jobs, err := g.client().Jobs(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(jobs))
			for _, j := range jobs {
				rows = append(rows, []string{j.ID, j.Name, j.State, strconv.FormatInt(j.Attempt, 10),
					strconv.Itoa(j.Tasks), j.SubmittedAt.Local().Format(time.DateTime)})
			}
			return p.print(jobs, []string{"ID", "NAME", "STATE", "ATTEMPT", "TASKS", "SUBMITTED"}, rows)
		},
	}
	addClientFlags(c, g)
	addOutputFlag(c, g)
	return c
}
