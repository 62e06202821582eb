package command

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func newLagCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "lag JOB",
		Short: "Show the Kafka lag of a job's sources, per partition",
		Long: "Show how far each Kafka source of a job is behind its topic, per partition: the\n" +
			"next offset recorded in the job's latest completed checkpoint, the broker's end\n" +
			"offset as the source reads it (read_committed: the last stable offset) and their\n" +
			"difference. The positions are those of the checkpoint, so the lag is what the\n" +
			"job would read again after a failure now, at most one checkpoint interval stale\n" +
			"(GET /api/v1/jobs/JOB/kafka).",
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
			lag, err := cl.KafkaLag(cmd.Context(), id)
			if err != nil {
				return err
			}
			if p.format == "json" {
				return p.print(lag, nil, nil)
			}
			w := g.stdout
			if len(lag.Sources) == 0 {
				fmt.Fprintln(w, "The job has no Kafka source.")
				return nil
			}
			if lag.CheckpointID > 0 && lag.CheckpointAt != nil {
				fmt.Fprintf(w, "Positions:  checkpoint %d at %s\n", lag.CheckpointID, lag.CheckpointAt.Local().Format(time.DateTime))
			} else {
				fmt.Fprintln(w, "Positions:  none yet (no completed checkpoint): end offsets only")
			}
			fmt.Fprintf(w, "Total lag:  %d\n", lag.TotalLag)
			for _, s := range lag.Sources {
				if s.Error != "" {
					fmt.Fprintf(w, "Source %s (topic %s): brokers not asked: %s\n", s.Node, s.Topic, s.Error)
				}
			}
			fmt.Fprintln(w)
			opt := func(v *int64) string {
				if v == nil {
					return "-"
				}
				return strconv.FormatInt(*v, 10)
			}
			var rows [][]string
			for _, s := range lag.Sources {
				for _, pl := range s.Partitions {
					rows = append(rows, []string{s.Node, s.Topic, strconv.Itoa(int(pl.Partition)), strconv.Itoa(pl.Subtask),
						opt(pl.Offset), opt(pl.EndOffset), opt(pl.Lag)})
				}
			}
			return p.print(nil, []string{"SOURCE", "TOPIC", "PARTITION", "SUBTASK", "OFFSET", "END", "LAG"}, rows)
		},
	}
	addClientFlags(c, g)
	addOutputFlag(c, g)
	return c
}
