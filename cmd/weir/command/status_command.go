package command

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/api"
)

func newStatusCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "status JOB",
		Short: "Show a job's state, failure cause, vertices and subtasks",
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
			j, err := cl.Job(cmd.Context(), id)
			if err != nil {
				return err
			}
			if p.format == "json" {
				return p.print(j, nil, nil)
			}
			w := g.stdout
			fmt.Fprintf(w, "Job:       %s (%s)\n", j.ID, j.Name)
			fmt.Fprintf(w, "State:     %s (attempt %d)\n", j.State, j.Attempt)
			fmt.Fprintf(w, "Submitted: %s\n", j.SubmittedAt.Local().Format(time.DateTime))
			if j.EndedAt != nil {
				fmt.Fprintf(w, "Ended:     %s\n", j.EndedAt.Local().Format(time.DateTime))
			}
			if j.Message != "" {
				fmt.Fprintf(w, "Message:   %s\n", j.Message)
			}
			if j.FailureCause != "" {
				fmt.Fprintf(w, "Cause:     %s\n", j.FailureCause)
			}
			if lf := j.LastFailure; lf != nil && lf.Cause != j.FailureCause {
				fmt.Fprintf(w, "Last failure: attempt %d, %s ago: %s\n", lf.FailedAttempt,
					time.Since(lf.DetectedAt).Round(time.Second), lf.Cause)
			}
			for i, warning := range j.Warnings {
				label := "Warning:   "
				if i > 0 {
					label = "           "
				}
				fmt.Fprintf(w, "%s%s\n", label, warning)
			}
			fmt.Fprintln(w)
			var rows [][]string
			for _, v := range j.Vertices {
				for _, s := range v.Subtasks {
					rows = append(rows, []string{v.ID, fmt.Sprintf("%d/%d", s.Index, v.Parallelism), s.Worker, s.State,
						strconv.FormatInt(s.RecordsIn, 10), strconv.FormatInt(s.RecordsOut, 10),
						strconv.FormatInt(s.BackpressuredMs, 10), linksCell(s.Links), stateCell(s.StateBytes), s.Error})
				}
			}
			return p.print(nil, []string{"VERTEX", "SUBTASK", "WORKER", "STATE", "IN", "OUT", "BACKPRESSURED_MS", "LINKS", "KEYED_STATE", "ERROR"}, rows)
		},
	}
	addClientFlags(c, g)
	addOutputFlag(c, g)
	return c
}

// linksCell says per source or sink whether it reaches its brokers:
// "out ok", "src UNREACHABLE since 07:34:39" (the error is in the
// warnings above the table).
func linksCell(ls []api.Link) string {
	var parts []string
	for _, l := range ls {
		switch {
		case l.Connected:
			parts = append(parts, l.Node+" ok")
		case l.UnreachableSince != nil:
			parts = append(parts, l.Node+" UNREACHABLE since "+l.UnreachableSince.Local().Format(time.TimeOnly))
		default:
			parts = append(parts, l.Node+" UNREACHABLE")
		}
	}
	return strings.Join(parts, ", ")
}

// stateCell is the estimated keyed state per node: "per-minute 1.2 MiB".
func stateCell(m map[string]int64) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, n+" "+api.FormatBytes(m[n]))
	}
	return strings.Join(parts, ", ")
}
