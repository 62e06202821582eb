package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/checkpoint"
)

func newCheckpointCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "checkpoint",
		Short: "Inspect and compare checkpoints and savepoints offline, straight from storage",
	}
	c.AddCommand(newCheckpointInspectCommand(g), newCheckpointDiffCommand(g))
	return c
}

func newCheckpointInspectCommand(g *globals) *cobra.Command {
	var verify bool
	c := &cobra.Command{
		Use:   "inspect URI",
		Short: "Show a checkpoint's or savepoint's metadata, state per operator, offsets and pending transactions",
		Long: "Reads <URI>/_metadata and prints the job, the checkpoint, and per operator and\n" +
			"subtask its state file, size, keys, Kafka offsets and pending sink transactions.\n" +
			"URI is a checkpoint or savepoint directory (file:///var/lib/weir/checkpoints/<job>/chk-7,\n" +
			"hdfs://..., or a local path) or its _metadata file. Every state file is checked to\n" +
			"exist with its recorded size; --verify reads them and checks their CRC-32C too.\n" +
			"Exits 1 when the metadata is missing or corrupt, or any state file fails its check.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.printer()
			if err != nil {
				return err
			}
			check := checkpoint.CheckSize
			if verify {
				check = checkpoint.CheckCRC
			}
			in, err := inspectURI(cmd.Context(), args[0], check)
			if err != nil {
				return err
			}
			if p.format == "json" {
				err = p.print(in, nil, nil)
			} else {
				err = printInspection(g.stdout, p, in)
			}
			if err != nil {
				return err
			}
			if in.Problems > 0 {
				return fmt.Errorf("%d of %d state files of %s failed the %s check (see STATUS)", in.Problems, in.StateFiles, in.URI, in.FileCheck)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&verify, "verify", false, "read every state file and verify its CRC-32C (default: check presence and size only)")
	addOutputFlag(c, g)
	return c
}

func newCheckpointDiffCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "diff FROM_URI TO_URI",
		Short: "Compare two checkpoints: state growth per operator and offset progress per partition",
		Long: "Reads the _metadata of two checkpoint or savepoint directories and prints, per\n" +
			"operator, how its state bytes and keys changed, and per Kafka partition how far the\n" +
			"source's next offset moved. Exits 1 when either metadata is missing or corrupt.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.printer()
			if err != nil {
				return err
			}
			from, err := inspectURI(cmd.Context(), args[0], checkpoint.CheckNone)
			if err != nil {
				return err
			}
			to, err := inspectURI(cmd.Context(), args[1], checkpoint.CheckNone)
			if err != nil {
				return err
			}
			d := checkpoint.DiffInspections(from, to)
			if p.format == "json" {
				return p.print(d, nil, nil)
			}
			return printDiff(g.stdout, p, d)
		},
	}
	addOutputFlag(c, g)
	return c
}

// inspectURI opens the storage rooted at the checkpoint directory itself, so
// any directory that holds a _metadata can be inspected, wherever it lives.
// A URI of the _metadata file itself (as the REST API shows restore points)
// means its directory.
func inspectURI(ctx context.Context, uri string, check checkpoint.FileCheck) (*checkpoint.Inspection, error) {
	if dir, ok := strings.CutSuffix(strings.TrimRight(uri, "/"), "/"+checkpoint.MetadataFile); ok && dir != "" {
		uri = dir
	}
	st, err := checkpoint.OpenStorage(uri)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	in, err := checkpoint.Inspect(ctx, st, "", check)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return nil, fmt.Errorf("%w; is %s a checkpoint directory (<job>/chk-<n> or <job>/savepoints/sp-<n>)?", err, uri)
	}
	return in, err
}

func printInspection(w io.Writer, p *printer, in *checkpoint.Inspection) error {
	fmt.Fprintf(w, "Location:   %s\n", in.URI)
	fmt.Fprintf(w, "Job:        %s (%s)\n", in.JobID, ckptOrDash(in.JobName))
	fmt.Fprintf(w, "%-11s %d\n", ckptTitle(in.Kind)+":", in.CheckpointID)
	fmt.Fprintf(w, "Triggered:  %s\n", ckptTime(in.TriggeredAt))
	fmt.Fprintf(w, "Completed:  %s (took %s)\n", ckptTime(in.CompletedAt), time.Duration(in.DurationMs)*time.Millisecond)
	fmt.Fprintf(w, "State:      %s in %d files, %d keys (files checked: %s)\n", ckptBytes(in.StateBytes), in.StateFiles, in.Keys, in.FileCheck)
	fmt.Fprintln(w)

	var rows, offsets, txns [][]string
	for _, o := range in.Operators {
		for _, s := range o.Subtasks {
			sub := fmt.Sprintf("%d/%d", s.Subtask, o.Parallelism)
			state := "-"
			if s.StateFile != "" {
				state = ckptBytes(s.StateBytes)
			}
			rows = append(rows, []string{o.Vertex, sub, o.Node, state, strconv.FormatInt(s.Keys, 10),
				strconv.Itoa(len(s.Offsets)), strconv.Itoa(len(s.PendingTransactions)), s.Status, ckptOrDash(s.StateFile)})
			for _, off := range s.Offsets {
				offsets = append(offsets, []string{o.Vertex, sub, o.Node, off.Topic, strconv.Itoa(int(off.Partition)), strconv.FormatInt(off.Offset, 10)})
			}
			for _, tx := range s.PendingTransactions {
				txns = append(txns, []string{o.Vertex, sub, o.Node, tx.TransactionalID, strconv.FormatInt(tx.ProducerID, 10),
					strconv.Itoa(int(tx.Epoch)), strconv.FormatInt(tx.CheckpointID, 10)})
			}
		}
	}
	if err := p.print(nil, []string{"VERTEX", "SUBTASK", "NODE", "STATE", "KEYS", "PARTITIONS", "PENDING_TXNS", "STATUS", "FILE"}, rows); err != nil {
		return err
	}
	var problems []string
	for _, o := range in.Operators {
		for _, s := range o.Subtasks {
			if s.Problem != "" {
				problems = append(problems, "  "+s.Problem)
			}
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\nProblems:\n%s\n", strings.Join(problems, "\n"))
	}

	fmt.Fprintln(w, "\nTotals per operator:")
	var totals [][]string
	for _, o := range in.Operators {
		totals = append(totals, []string{o.Vertex, o.Node, strconv.Itoa(len(o.Subtasks)), ckptBytes(o.StateBytes), strconv.FormatInt(o.Keys, 10)})
	}
	if err := p.print(nil, []string{"VERTEX", "NODE", "SUBTASKS", "STATE", "KEYS"}, totals); err != nil {
		return err
	}
	if len(offsets) > 0 {
		fmt.Fprintln(w, "\nKafka offsets (next offset to read):")
		if err := p.print(nil, []string{"VERTEX", "SUBTASK", "NODE", "TOPIC", "PARTITION", "OFFSET"}, offsets); err != nil {
			return err
		}
	}
	if len(txns) > 0 {
		fmt.Fprintln(w, "\nPending sink transactions (committed when this checkpoint is restored):")
		if err := p.print(nil, []string{"VERTEX", "SUBTASK", "NODE", "TRANSACTIONAL_ID", "PRODUCER_ID", "EPOCH", "CHECKPOINT"}, txns); err != nil {
			return err
		}
	}
	return nil
}

func printDiff(w io.Writer, p *printer, d *checkpoint.Diff) error {
	for _, s := range []struct {
		label string
		side  checkpoint.DiffSide
	}{{"From:", d.From}, {"To:", d.To}} {
		fmt.Fprintf(w, "%-6s %s %d of job %s, completed %s (%s)\n", s.label, s.side.Kind, s.side.CheckpointID, s.side.JobID,
			ckptTime(s.side.CompletedAt), s.side.URI)
	}
	if d.From.JobID != d.To.JobID {
		fmt.Fprintln(w, "note: the two checkpoints belong to different jobs")
	}
	fmt.Fprintf(w, "State:  %s -> %s (%s), keys %d -> %d (%+d)\n", ckptBytes(d.StateBytes.From), ckptBytes(d.StateBytes.To),
		ckptBytesDelta(d.StateBytes.Delta), d.Keys.From, d.Keys.To, d.Keys.Delta)
	fmt.Fprintf(w, "Read:   %d records across the partitions on both sides\n\n", d.Records)

	var rows [][]string
	for _, o := range d.Operators {
		rows = append(rows, []string{o.Vertex, o.Node, ckptOrDash(o.Change),
			fmt.Sprintf("%d -> %d", o.Parallelism.From, o.Parallelism.To),
			ckptBytes(o.StateBytes.From), ckptBytes(o.StateBytes.To), ckptBytesDelta(o.StateBytes.Delta),
			strconv.FormatInt(o.Keys.From, 10), strconv.FormatInt(o.Keys.To, 10), fmt.Sprintf("%+d", o.Keys.Delta)})
	}
	if err := p.print(nil, []string{"VERTEX", "NODE", "CHANGE", "PARALLELISM", "STATE_FROM", "STATE_TO", "STATE_DELTA", "KEYS_FROM", "KEYS_TO", "KEYS_DELTA"}, rows); err != nil {
		return err
	}
	if len(d.Offsets) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nKafka offsets:")
	rows = nil
	for _, o := range d.Offsets {
		from, to, dd := strconv.FormatInt(o.Offset.From, 10), strconv.FormatInt(o.Offset.To, 10), fmt.Sprintf("%+d", o.Offset.Delta)
		switch o.Change {
		case "added":
			from, dd = "-", "added"
		case "removed":
			to, dd = "-", "removed"
		}
		rows = append(rows, []string{o.Vertex, o.Node, o.Topic, strconv.Itoa(int(o.Partition)), from, to, dd})
	}
	return p.print(nil, []string{"VERTEX", "NODE", "TOPIC", "PARTITION", "FROM", "TO", "DELTA"}, rows)
}

func ckptTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime + ".000")
}

// ckptBytes renders a size for people: exact below 1 KiB, else three
// significant figures with a binary unit.
func ckptBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, i := float64(n)/1024, 0
	for (f >= 1024 || f <= -1024) && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i:i+1] + "iB"
}

func ckptBytesDelta(n int64) string {
	if n >= 0 {
		return "+" + ckptBytes(n)
	}
	return ckptBytes(n)
}

func ckptOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ckptTitle(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
