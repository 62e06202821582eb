package command

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/connectors/accesslog"
)

func newLoadgenCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "loadgen",
		Short: "Write deterministic test traffic to Kafka",
	}
	var (
		brokers string
		topic   string
		cfg     accesslog.Config
		rate    float64
		kflags  kafkaClientFlags
		showP   bool
	)
	al := &cobra.Command{
		Use:   "access-log",
		Short: "Write a deterministic access log (JSON per record) for a seed",
		Long: "Write a deterministic access log, one JSON object per record:\n" +
			`{"ip": "10.1.2.3", "ts": <epoch ms>, "url": "/x", "status": 200, "bytes": 512}` + "\n" +
			"with skewed IPs, events out of order within 3s, and a few late ones 10 minutes behind.\n" +
			"The same --seed, --events and --partitions always write the same records.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Events < 0 || rate < 0 || cfg.Partitions < 1 {
				return usagef("--events and --rate must be ≥ 0 and --partitions ≥ 1")
			}
			if cfg.Events == 0 && rate == 0 {
				return usagef("--events 0 (run until stopped) needs a --rate")
			}
			secure, err := kflags.security()
			if err != nil {
				return err
			}
			start := time.Now()
			var last int64
			prog := g.newProgress(cmd, showP)
			total := "∞"
			if cfg.Events > 0 {
				total = strconv.FormatInt(cfg.Events, 10)
			}
			err = accesslog.Produce(cmd.Context(), splitList(brokers), topic, cfg, rate, func(n int64) {
				last = n
				prog.update("loadgen: %d of %s events to %s (%.0f events/s)", n, total, topic, float64(n)/time.Since(start).Seconds())
			}, secure)
			prog.done()
			if err != nil && cmd.Context().Err() == nil {
				return fmt.Errorf("loadgen: %w", err)
			}
			el := time.Since(start)
			fmt.Fprintf(g.stdout, "wrote %d events to %s in %s (%.0f events/s)\n", last, topic,
				el.Round(time.Millisecond), float64(last)/el.Seconds())
			return nil
		},
	}
	addBrokersFlag(al, &brokers)
	al.Flags().StringVar(&topic, "topic", "access-log", "topic to write (created when missing)")
	al.Flags().Int64Var(&cfg.Events, "events", 100000, "number of events (0: until stopped, needs --rate)")
	al.Flags().Int64Var(&cfg.Seed, "seed", 1, "seed of the generator")
	al.Flags().Float64Var(&rate, "rate", 0, "events per second (0: as fast as possible)")
	al.Flags().Int32Var(&cfg.Partitions, "partitions", 4, "partitions of the topic (events go to hash(ip) % partitions)")
	kflags.register(al.Flags())
	addProgressFlag(al, &showP)
	c.AddCommand(al)
	return c
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
