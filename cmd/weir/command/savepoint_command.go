package command

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/api"
)

// savepointPoll is how often --wait asks the coordinator.
const savepointPoll = 200 * time.Millisecond

func newSavepointCommand(g *globals) *cobra.Command {
	var stop, wait, showP bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "savepoint JOB",
		Short: "Take a savepoint of a running job (--stop: and end the job)",
		Long: "Take a savepoint of a running job. With --wait, wait until it is complete and print\n" +
			"its URI (the argument of weir submit --from-savepoint); without, print the request id\n" +
			"(GET /api/v1/jobs/JOB/savepoints/ID). With --stop the sources end after the savepoint's\n" +
			"barrier and the job ends FINISHED. Savepoints are never deleted automatically.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return usagef("--timeout must be positive")
			}
			cl := g.client()
			id, err := resolveJob(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			sp, err := cl.TriggerSavepoint(cmd.Context(), id, stop)
			if err != nil {
				return err
			}
			if !wait {
				fmt.Fprintln(g.stdout, sp.RequestID)
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			prog := g.newProgress(cmd, showP)
			start := time.Now()
			prog.update("savepoint %s of job %s: %s", sp.RequestID, id, sp.Status)
			sp, err = waitSavepoint(ctx, cl, id, sp.RequestID, func(s *api.Savepoint) {
				prog.update("savepoint %s of job %s: %s for %s", s.RequestID, id, s.Status, time.Since(start).Round(time.Second))
			})
			prog.done()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, sp.Location)
			return nil
		},
	}
	addClientFlags(c, g)
	c.Flags().BoolVar(&stop, "stop", false, "end the job after the savepoint (stop with savepoint)")
	c.Flags().BoolVar(&wait, "wait", false, "wait for the savepoint and print its URI instead of the request id")
	c.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "give up waiting after this long (with --wait)")
	addProgressFlag(c, &showP)
	return c
}

// waitSavepoint polls a savepoint request until it ends.
// each, when not nil, sees every answer while it is in progress.
func waitSavepoint(ctx context.Context, cl *api.Client, job, rid string, each func(*api.Savepoint)) (*api.Savepoint, error) {
	t := time.NewTicker(savepointPoll)
	defer t.Stop()
	for {
		sp, err := cl.Savepoint(ctx, job, rid)
		if err != nil {
			return nil, err
		}
		switch sp.Status {
		case "COMPLETED":
			return sp, nil
		case "FAILED":
			return nil, fmt.Errorf("savepoint %s of job %s failed: %s", rid, job, sp.Failure)
		}
		if each != nil {
			each(sp)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("savepoint %s of job %s: still in progress (check later with weir savepoints %s): %w", rid, job, job, ctx.Err())
		case <-t.C:
		}
	}
}
