package command

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/api"
)

func newRestartsCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "restarts JOB",
		Short: "Show a job's restarts: cause, restored checkpoint and timeline",
		Long: "Show every restart of a job, oldest first: the attempt that failed, its cause,\n" +
			"the task and worker, the delay of the restart strategy, the checkpoint the job\n" +
			"restored from, and the timeline from detection to running again\n" +
			"(GET /api/v1/jobs/JOB/restarts).",
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
			rs, err := cl.Restarts(cmd.Context(), id)
			if err != nil {
				return err
			}
			if p.format == "json" {
				return p.print(rs, nil, nil)
			}
			fmt.Fprintf(g.stdout, "Strategy: %s\nRestarts: %d\n\n", rs.Strategy, len(rs.Restarts))
			rows := make([][]string, 0, len(rs.Restarts))
			for _, r := range rs.Restarts {
				rows = append(rows, restartRow(r))
			}
			return p.print(nil, []string{"FAILED", "DETECTED", "WORKER", "DELAY", "RESTORED", "TIMELINE", "CAUSE"}, rows)
		},
	}
	addClientFlags(c, g)
	addOutputFlag(c, g)
	return c
}

func restartRow(r api.Restart) []string {
	restored := "-"
	switch {
	case r.GaveUp:
		restored = "gave up"
	case r.RestoredFrom > 0:
		restored = "checkpoint " + strconv.FormatInt(r.RestoredFrom, 10)
	case r.RunningAt != nil:
		restored = "no state"
	}
	worker := r.Worker
	if worker == "" {
		worker = "-"
	}
	cause := r.Cause
	if r.Task != "" {
		cause = r.Task + ": " + cause
	}
	return []string{"attempt " + strconv.FormatInt(r.FailedAttempt, 10), r.DetectedAt.Local().Format(time.DateTime),
		worker, ms(r.DelayMs), restored, timeline(r), cause}
}

// timeline writes each step of a restart as the time since detection, the
// steps Flink's restart view shows: cancelled, scheduled, restored,
// running. A step not reached yet is left out.
func timeline(r api.Restart) string {
	var parts []string
	for _, s := range []struct {
		name string
		at   *time.Time
	}{{"cancelled", r.CancelledAt}, {"scheduled", r.ScheduledAt}, {"restored", r.RestoredAt}, {"running", r.RunningAt}} {
		if s.at != nil {
			parts = append(parts, fmt.Sprintf("%s +%s", s.name, roundDuration(s.at.Sub(r.DetectedAt))))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// roundDuration keeps two or three significant digits: 1.234567s is 1.23s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d
}
