package checkpoint

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// Inspection is what weir checkpoint inspect reports about one checkpoint or
// savepoint, read offline from its directory. Its JSON form (snake_case) is
// the -o json output and stays compatible: fields are only added.
type Inspection struct {
	URI            string    `json:"uri"`
	JobID          string    `json:"job_id"`
	JobName        string    `json:"job_name"`
	CheckpointID   int64     `json:"checkpoint_id"`
	Kind           string    `json:"kind"` // "checkpoint" or "savepoint"
	FormatVersion  uint32    `json:"format_version"`
	TriggeredAt    time.Time `json:"triggered_at"`
	CompletedAt    time.Time `json:"completed_at"`
	DurationMs     int64     `json:"duration_ms"`
	MaxParallelism int32     `json:"max_parallelism"`
	// StateBytes, Keys and StateFiles are totals over every operator.
	StateBytes int64 `json:"state_bytes"`
	Keys       int64 `json:"keys"`
	StateFiles int   `json:"state_files"`
	// FileCheck is how the state files were checked: "none", "size" or
	// "crc32c"; Problems counts files that failed it.
	FileCheck string `json:"file_check"`
	Problems  int    `json:"problems"`
	// Operators are one per (vertex, node), in the metadata's order.
	Operators []OperatorInspection `json:"operators"`
	JobSpec   string               `json:"job_spec"`
}

// OperatorInspection sums one node of one vertex over its subtasks.
type OperatorInspection struct {
	Vertex      string              `json:"vertex"`
	Node        string              `json:"node"`
	Parallelism int32               `json:"parallelism"`
	StateBytes  int64               `json:"state_bytes"`
	Keys        int64               `json:"keys"`
	Subtasks    []SubtaskInspection `json:"subtasks"`
}

// SubtaskInspection is one operator instance: its state file and figures.
type SubtaskInspection struct {
	Subtask             int32                `json:"subtask"`
	StateFile           string               `json:"state_file"` // relative to the checkpoint directory; "" without state
	StateBytes          int64                `json:"state_bytes"`
	CRC32C              uint32               `json:"crc32c"`
	Keys                int64                `json:"keys"`
	Offsets             []OffsetInspection   `json:"offsets"`
	PendingTransactions []PendingTransaction `json:"pending_transactions"`
	// Status is "ok", "unchecked", "no state", "missing" or "corrupt";
	// Problem says what is wrong.
	Status  string `json:"status"`
	Problem string `json:"problem,omitempty"`
}

// OffsetInspection is a Kafka source's next offset for one partition.
type OffsetInspection struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// PendingTransaction is a sink transaction that the checkpoint's completion
// commits.
type PendingTransaction struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	Epoch           int32  `json:"epoch"`
	CheckpointID    int64  `json:"checkpoint_id"`
}

// FileCheck is how thoroughly Inspect checks the state files.
type FileCheck int

const (
	// CheckNone reads only _metadata.
	CheckNone FileCheck = iota
	// CheckSize stats every state file: present, with the recorded size.
	CheckSize
	// CheckCRC reads every state file and verifies its CRC-32C.
	CheckCRC
)

func (c FileCheck) String() string {
	switch c {
	case CheckNone:
		return "none"
	case CheckSize:
		return "size"
	case CheckCRC:
		return "crc32c"
	}
	return fmt.Sprintf("FileCheck(%d)", int(c))
}

// Inspect reads the checkpoint or savepoint in dir and describes it,
// checking its state files as check says. A missing or corrupt _metadata is
// an error (wrapping ErrNotFound or ErrCorrupt, naming the file); a state
// file that fails its check is reported in the Inspection (Problems, and
// each subtask's Status).
func Inspect(ctx context.Context, st Storage, dir string, check FileCheck) (*Inspection, error) {
	m, err := ReadMetadata(ctx, st, dir)
	if err != nil {
		return nil, err
	}
	in := InspectMetadata(m, st.URI(dir))
	in.FileCheck = check.String()
	for i := range in.Operators {
		for j := range in.Operators[i].Subtasks {
			s := &in.Operators[i].Subtasks[j]
			if s.StateFile == "" {
				s.Status = "no state"
				continue
			}
			if check == CheckNone {
				continue
			}
			h := &checkpointpb.StateHandle{Path: s.StateFile, Size: s.StateBytes, Crc32C: s.CRC32C}
			var err error
			if check == CheckCRC {
				_, err = ReadState(ctx, st, dir, h)
			} else {
				err = ValidateForRestore(ctx, st, dir, &checkpointpb.Metadata{Subtasks: []*checkpointpb.SubtaskState{
					{Operators: []*checkpointpb.OperatorState{{Handle: h}}}}})
			}
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			switch {
			case err == nil:
				s.Status = "ok"
			case errors.Is(err, ErrNotFound):
				s.Status, s.Problem = "missing", err.Error()
				in.Problems++
			case errors.Is(err, ErrCorrupt):
				s.Status, s.Problem = "corrupt", err.Error()
				in.Problems++
			default:
				return nil, fmt.Errorf("check state file %s: %w", st.URI(path.Join(dir, s.StateFile)), err)
			}
		}
	}
	return in, nil
}

func unixMs(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// InspectMetadata describes m without touching storage (every subtask's
// Status is "unchecked", or "no state"). uri is where m was read from.
func InspectMetadata(m *checkpointpb.Metadata, uri string) *Inspection {
	in := &Inspection{
		URI: uri, JobID: m.GetJobId(), JobName: m.GetJobName(), CheckpointID: m.GetCheckpointId(),
		Kind: "checkpoint", FormatVersion: m.GetFormatVersion(),
		TriggeredAt: unixMs(m.GetTriggerUnixMs()), CompletedAt: unixMs(m.GetCompleteUnixMs()),
		MaxParallelism: m.GetMaxParallelism(), FileCheck: CheckNone.String(),
		Operators: []OperatorInspection{}, JobSpec: string(m.GetJobSpec()),
	}
	if m.GetSavepoint() {
		in.Kind = "savepoint"
	}
	if m.GetTriggerUnixMs() > 0 && m.GetCompleteUnixMs() >= m.GetTriggerUnixMs() {
		in.DurationMs = m.GetCompleteUnixMs() - m.GetTriggerUnixMs()
	}
	index := map[[2]string]int{}
	for _, sub := range m.GetSubtasks() {
		for _, op := range sub.GetOperators() {
			key := [2]string{sub.GetVertexId(), op.GetNode()}
			i, ok := index[key]
			if !ok {
				i = len(in.Operators)
				index[key] = i
				in.Operators = append(in.Operators, OperatorInspection{Vertex: key[0], Node: key[1], Subtasks: []SubtaskInspection{}})
			}
			o := &in.Operators[i]
			o.Parallelism = max(o.Parallelism, sub.GetParallelism())
			s := SubtaskInspection{Subtask: sub.GetSubtask(), Keys: op.GetKeys(), Status: "unchecked",
				Offsets: []OffsetInspection{}, PendingTransactions: []PendingTransaction{}}
			if h := op.GetHandle(); h != nil {
				s.StateFile, s.StateBytes, s.CRC32C = h.GetPath(), h.GetSize(), h.GetCrc32C()
				in.StateFiles++
			} else {
				s.Status = "no state"
			}
			for _, off := range op.GetOffsets() {
				s.Offsets = append(s.Offsets, OffsetInspection{Topic: off.GetTopic(), Partition: off.GetPartition(), Offset: off.GetOffset()})
			}
			slices.SortFunc(s.Offsets, func(a, b OffsetInspection) int {
				return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
			})
			for _, tx := range op.GetPendingTransactions() {
				s.PendingTransactions = append(s.PendingTransactions, PendingTransaction{TransactionalID: tx.GetTransactionalId(),
					ProducerID: tx.GetProducerId(), Epoch: tx.GetEpoch(), CheckpointID: tx.GetCheckpointId()})
			}
			o.StateBytes += s.StateBytes
			o.Keys += s.Keys
			in.StateBytes += s.StateBytes
			in.Keys += s.Keys
			o.Subtasks = append(o.Subtasks, s)
		}
	}
	for i := range in.Operators {
		slices.SortStableFunc(in.Operators[i].Subtasks, func(a, b SubtaskInspection) int { return cmp.Compare(a.Subtask, b.Subtask) })
	}
	return in
}

// Diff is what weir checkpoint diff reports: how state and source positions
// moved from one checkpoint to another. Its JSON form is the -o json output.
type Diff struct {
	From DiffSide `json:"from"`
	To   DiffSide `json:"to"`
	// Operators are the union of both sides' operators, To's order first.
	Operators []OperatorDiff `json:"operators"`
	// Offsets are per (vertex, node, topic, partition), over all subtasks,
	// so a rescaled job still compares partition by partition.
	Offsets []OffsetDiff `json:"offsets"`
	// Totals over every operator.
	StateBytes Delta `json:"state_bytes"`
	Keys       Delta `json:"keys"`
	// Records is the sum of every partition's offset delta (records read
	// between the two checkpoints, counting only partitions in both).
	Records int64 `json:"records"`
}

// DiffSide identifies one side of a Diff.
type DiffSide struct {
	URI          string    `json:"uri"`
	JobID        string    `json:"job_id"`
	CheckpointID int64     `json:"checkpoint_id"`
	Kind         string    `json:"kind"`
	CompletedAt  time.Time `json:"completed_at"`
}

// Delta is a figure on both sides and its change (to - from).
type Delta struct {
	From  int64 `json:"from"`
	To    int64 `json:"to"`
	Delta int64 `json:"delta"`
}

func delta(from, to int64) Delta { return Delta{From: from, To: to, Delta: to - from} }

// OperatorDiff compares one (vertex, node). Change is "" when it is on both
// sides, "added" when only in To, "removed" when only in From.
type OperatorDiff struct {
	Vertex      string `json:"vertex"`
	Node        string `json:"node"`
	Change      string `json:"change"`
	Parallelism Delta  `json:"parallelism"`
	StateBytes  Delta  `json:"state_bytes"`
	Keys        Delta  `json:"keys"`
}

// OffsetDiff compares one partition's next offset. A partition on one side
// only has Change "added" or "removed" and a zero Delta.
type OffsetDiff struct {
	Vertex    string `json:"vertex"`
	Node      string `json:"node"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Change    string `json:"change"`
	Offset    Delta  `json:"offset"`
}

func side(in *Inspection) DiffSide {
	return DiffSide{URI: in.URI, JobID: in.JobID, CheckpointID: in.CheckpointID, Kind: in.Kind, CompletedAt: in.CompletedAt}
}

type offsetKey struct {
	vertex, node, topic string
	partition           int32
}

func offsetsOf(in *Inspection) (map[offsetKey]int64, []offsetKey) {
	m := map[offsetKey]int64{}
	var order []offsetKey
	for _, o := range in.Operators {
		for _, s := range o.Subtasks {
			for _, off := range s.Offsets {
				k := offsetKey{o.Vertex, o.Node, off.Topic, off.Partition}
				if _, ok := m[k]; !ok {
					order = append(order, k)
				}
				m[k] = max(m[k], off.Offset)
			}
		}
	}
	return m, order
}

// DiffInspections compares two inspections.
func DiffInspections(from, to *Inspection) *Diff {
	d := &Diff{From: side(from), To: side(to), Operators: []OperatorDiff{}, Offsets: []OffsetDiff{},
		StateBytes: delta(from.StateBytes, to.StateBytes), Keys: delta(from.Keys, to.Keys)}
	fromOps := map[[2]string]OperatorInspection{}
	for _, o := range from.Operators {
		fromOps[[2]string{o.Vertex, o.Node}] = o
	}
	seen := map[[2]string]bool{}
	for _, o := range to.Operators {
		k := [2]string{o.Vertex, o.Node}
		seen[k] = true
		f, ok := fromOps[k]
		od := OperatorDiff{Vertex: o.Vertex, Node: o.Node, Parallelism: delta(int64(f.Parallelism), int64(o.Parallelism)),
			StateBytes: delta(f.StateBytes, o.StateBytes), Keys: delta(f.Keys, o.Keys)}
		if !ok {
			od.Change = "added"
		}
		d.Operators = append(d.Operators, od)
	}
	for _, f := range from.Operators {
		if seen[[2]string{f.Vertex, f.Node}] {
			continue
		}
		d.Operators = append(d.Operators, OperatorDiff{Vertex: f.Vertex, Node: f.Node, Change: "removed",
			Parallelism: delta(int64(f.Parallelism), 0), StateBytes: delta(f.StateBytes, 0), Keys: delta(f.Keys, 0)})
	}

	fo, _ := offsetsOf(from)
	to2, order := offsetsOf(to)
	for _, k := range order {
		f, ok := fo[k]
		od := OffsetDiff{Vertex: k.vertex, Node: k.node, Topic: k.topic, Partition: k.partition, Offset: delta(f, to2[k])}
		if ok {
			d.Records += od.Offset.Delta
		} else {
			od.Change, od.Offset = "added", Delta{To: to2[k]}
		}
		d.Offsets = append(d.Offsets, od)
	}
	var removed []offsetKey
	for k := range fo {
		if _, ok := to2[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.SortFunc(removed, func(a, b offsetKey) int {
		return cmp.Or(strings.Compare(a.vertex, b.vertex), strings.Compare(a.node, b.node),
			strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	for _, k := range removed {
		d.Offsets = append(d.Offsets, OffsetDiff{Vertex: k.vertex, Node: k.node, Topic: k.topic, Partition: k.partition,
			Change: "removed", Offset: Delta{From: fo[k]}})
	}
	// Partitions grouped by operator, then by topic and partition.
	opOrder := map[[2]string]int{}
	for i, o := range d.Operators {
		opOrder[[2]string{o.Vertex, o.Node}] = i
	}
	slices.SortStableFunc(d.Offsets, func(a, b OffsetDiff) int {
		return cmp.Or(cmp.Compare(opOrder[[2]string{a.Vertex, a.Node}], opOrder[[2]string{b.Vertex, b.Node}]),
			strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return d
}
