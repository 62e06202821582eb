package command

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/api"
)

func newCheckpointsCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "checkpoints JOB",
		Short: "Show a job's checkpoint counts, history and latest restore",
		Args:  cobra.ExactArgs(1),
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
			cs, err := cl.Checkpoints(cmd.Context(), id)
			if err != nil {
				return err
			}
			if p.format == "json" {
				return p.print(cs, nil, nil)
			}
			w := g.stdout
			if cs.Config.Enabled {
				fmt.Fprintf(w, "Checkpoints: every %s, timeout %s, %d retained, in %s\n",
					ms(cs.Config.IntervalMs), ms(cs.Config.TimeoutMs), cs.Config.Retained, cs.Config.Storage)
			} else {
				fmt.Fprintf(w, "Checkpoints: off (savepoints go to %s)\n", cs.Config.Storage)
			}
			n := cs.Counts
			fmt.Fprintf(w, "Counts:      triggered %d, in progress %d, completed %d, failed %d\n", n.Triggered, n.InProgress, n.Completed, n.Failed)
			if l := cs.Latest; l != nil {
				fmt.Fprintf(w, "Latest:      %d at %s (%s)\n", l.ID, l.TriggerTime.Local().Format(time.DateTime), l.Location)
			}
			if r := cs.LatestRestore; r != nil {
				fmt.Fprintf(w, "Restored:    attempt %d from %d (%s)\n", r.Attempt, r.CheckpointID, r.Location)
				if r.Fallback != "" {
					fmt.Fprintf(w, "Fallback:    %s\n", r.Fallback)
				}
			} else {
				fmt.Fprintln(w, "Restored:    nothing (started without state)")
			}
			fmt.Fprintln(w)
			rows := make([][]string, 0, len(cs.History))
			for _, h := range cs.History {
				rows = append(rows, checkpointRow(h))
			}
			return p.print(nil, []string{"ID", "STATUS", "TYPE", "TRIGGERED", "DURATION", "SIZE", "SLOWEST", "MAX_ALIGNMENT", "FAILURE"}, rows)
		},
	}
	addClientFlags(c, g)
	addOutputFlag(c, g)
	return c
}

func checkpointRow(h api.CheckpointStats) []string {
	kind := "checkpoint"
	if h.Savepoint {
		kind = "savepoint"
		if h.Stop {
			kind = "savepoint+stop"
		}
	}
	dur := "-"
	if h.EndTime != nil {
		dur = ms(h.DurationMs)
	}
	slowest := "-"
	if h.SlowestSubtask != "" {
		slowest = fmt.Sprintf("%s (%s)", h.SlowestSubtask, ms(h.SlowestMs))
	}
	failure := h.Failure
	if h.FailureReason != "" {
		failure = h.FailureReason + ": " + failure
	}
	return []string{strconv.FormatInt(h.ID, 10), h.Status, kind, h.TriggerTime.Local().Format(time.DateTime), dur,
		bytesString(h.SizeBytes), slowest, ms(h.MaxAlignmentMs), failure}
}

func ms(n int64) string { return (time.Duration(n) * time.Millisecond).String() }

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
