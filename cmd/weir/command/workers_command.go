package command

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/api"
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
					w.DataAddr, w.HTTPAddr, time.Since(w.LastHeartbeat).Round(100*time.Millisecond).String() + " ago",
					w.Version, operatorsCell(w.Operators)})
			}
			if err := p.print(ws, []string{"ID", "STATE", "SLOTS", "DATA", "HTTP", "HEARTBEAT", "VERSION", "OPERATORS"}, rows); err != nil || p.format == "json" {
				return err
			}
			for _, w := range ws {
				if w.Drain != nil && w.Drain.Waiting != "" {
					fmt.Fprintf(g.stdout, "%s drains, waiting: %s\n", w.ID, w.Drain.Waiting)
				}
			}
			return nil
		},
	}
	addClientFlags(c, g)
	addOutputFlag(c, g)
	c.AddCommand(newWorkersDrainCommand(g))
	return c
}

// operatorsCell lists a worker's user operators as id@module version.
func operatorsCell(ops []api.Operator) string {
	if len(ops) == 0 {
		return "-"
	}
	cells := make([]string, 0, len(ops))
	for _, o := range ops {
		cells = append(cells, o.ID+"@"+o.Module+" "+o.Version)
	}
	return strings.Join(cells, ", ")
}
