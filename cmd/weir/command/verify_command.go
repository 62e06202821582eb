package command

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/connectors/accesslog"
)

// errMismatch is returned when verification finds a difference (exit 1).
var errMismatch = errors.New("output does not match the model")

func newVerifyCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check a job's output topic against the exact result its input implies",
	}
	var (
		brokers         string
		topic           string
		cfg             accesslog.Config
		window          time.Duration
		ooo             time.Duration
		idle            time.Duration
		allowDuplicates bool
		kflags          kafkaClientFlags
		wait            time.Duration
		showP           bool
	)
	iv := &cobra.Command{
		Use:   "ip-visits",
		Short: "Verify ip-visits output (read_committed) against the windows weir loadgen's seed implies",
		Long: "Reads the whole output topic with read_committed isolation and compares every\n" +
			"window with the exact count and bytes the seed implies. Prints matched, lost,\n" +
			"duplicated, wrong and unexpected windows; exits 1 on any mismatch.\n" +
			"With --allow-duplicates, repeated copies of correct windows (what an\n" +
			"at-least-once sink writes after a restart) are counted but do not fail.\n" +
			"Windows past the final watermark may not have fired yet: they are 'pending' and\n" +
			"only checked when present. With --wait it reads again until the output matches,\n" +
			"for a job still catching up.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Events < 1 || cfg.Partitions < 1 {
				return usagef("--events and --partitions must be at least 1")
			}
			p, err := g.printer()
			if err != nil {
				return err
			}
			secure, err := kflags.security()
			if err != nil {
				return err
			}
			if wait < 0 {
				return usagef("--wait must be ≥ 0")
			}
			model := accesslog.Expected(cfg, window, ooo)
			prog := g.newProgress(cmd, showP)
			deadline := time.Now().Add(wait)
			var (
				res accesslog.Result
				bad []accesslog.Malformed
				ok  bool
			)
			// With --wait the output is read again until it matches: a
			// job's windows fire as its watermark passes them, and an
			// exactly-once sink's output shows when a checkpoint commits.
			for attempt := 1; ; attempt++ {
				var outs []accesslog.OutputRecord
				outs, bad, err = accesslog.ReadOutputs(cmd.Context(), splitList(brokers), topic, idle, secure)
				if err == nil {
					res = model.Verify(outs)
					res.Wrong += len(bad)
					ok = res.OK()
					if allowDuplicates {
						ok = res.OKAllowingDuplicates()
					}
				}
				if (err == nil && ok) || time.Now().After(deadline) || cmd.Context().Err() != nil {
					break
				}
				if err != nil {
					prog.update("verify: read %s: %v (attempt %d, waiting up to %s)", topic, err, attempt, time.Until(deadline).Round(time.Second))
				} else {
					prog.update("verify: matched %d of %d windows, lost %d (attempt %d, waiting up to %s)",
						res.Matched, res.Matched+res.Lost, res.Lost, attempt, time.Until(deadline).Round(time.Second))
				}
			}
			prog.done()
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			if p.format == "json" {
				malformed := make([]string, 0, len(bad))
				for _, b := range bad {
					malformed = append(malformed, b.String())
				}
				if err := p.print(accesslog.NewReport(res, ok, malformed), nil, nil); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.stdout, "matched %d  lost %d  duplicated %d  wrong %d  unexpected %d  pending %d\n",
					res.Matched, res.Lost, res.Duplicated, res.Wrong, res.Unexpected, res.Pending)
				for _, b := range bad {
					fmt.Fprintf(g.stdout, "  malformed: %v\n", b)
				}
				for _, e := range res.Examples {
					fmt.Fprintf(g.stdout, "  %s\n", e)
				}
			}
			if !ok {
				return errMismatch
			}
			return nil
		},
	}
	addBrokersFlag(iv, &brokers)
	iv.Flags().StringVar(&topic, "topic", "ip-visits", "output topic to read")
	iv.Flags().Int64Var(&cfg.Events, "events", 100000, "events loadgen wrote")
	iv.Flags().Int64Var(&cfg.Seed, "seed", 1, "seed loadgen used")
	iv.Flags().Int32Var(&cfg.Partitions, "partitions", 4, "partitions of the input topic loadgen wrote")
	iv.Flags().DurationVar(&window, "window", time.Minute, "tumbling window size of the job")
	iv.Flags().DurationVar(&ooo, "out-of-orderness", 5*time.Second, "max_out_of_orderness of the job")
	iv.Flags().DurationVar(&idle, "idle", 2*time.Second, "stop reading after the topic has been quiet this long")
	iv.Flags().BoolVar(&allowDuplicates, "allow-duplicates", false, "count repeated copies of correct windows (at-least-once output) without failing")
	iv.Flags().DurationVar(&wait, "wait", 0, "read the output again until it matches or this much time has passed (0: read once)")
	addProgressFlag(iv, &showP)
	kflags.register(iv.Flags())
	addOutputFlag(iv, g)
	c.AddCommand(iv)
	return c
}
