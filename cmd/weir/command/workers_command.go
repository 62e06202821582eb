package command

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func newWorkersCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "workers",
		Short: "List registered workers with their slots and last heartbeat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.printer()
			if err != nil {
				return err
			}
			ws, err := g.client().Workers(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(ws))
			for _, w := range ws {
				rows = append(rows, []string{w.ID, w.State, strconv.Itoa(w.SlotsUsed) + "/" + strconv.Itoa(w.Slots),
					w.DataAddr, w.HTTPAddr, time.Since(w.LastHeartbeat).Round(100*time.Millisecond).String() + " ago"})
			}
			return p.print(ws, []string{"ID", "STATE", "SLOTS", "DATA", "HTTP", "HEARTBEAT"}, rows)
		},
	}
	addClientFlags(c, g)
	addOutputFlag(c, g)
	return c
}
