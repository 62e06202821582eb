package command

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newWorkersDrainCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "drain WORKER",
		Short: "Drain a worker: move its jobs elsewhere from a stop checkpoint, then let it exit",
		Long: "Drain a worker, as a SIGTERM to its process does: nothing more is placed on it, every job\n" +
			"with a subtask there stops at a checkpoint and restarts from it on the other workers, and\n" +
			"the worker exits once it holds no subtask. A job the other workers have no room for keeps\n" +
			"running there until they have; `weir workers` shows the worker DRAINING and what it waits for\n" +
			"(docs/failover.md, \"Draining a worker\").",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := g.client().DrainWorker(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "draining %s (%d/%d slots used)\n", w.ID, w.SlotsUsed, w.Slots)
			if w.Drain != nil && w.Drain.Waiting != "" {
				fmt.Fprintf(g.stdout, "waiting: %s\n", w.Drain.Waiting)
			}
			return nil
		},
	}
	addClientFlags(c, g)
	return c
}
