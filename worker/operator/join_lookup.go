package operator

import (
	"fmt"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// lookupJoin joins each left record with the row of its key in a table
// built from the right input, as of the left record's arrival (Flink's
// lookup join, with the table kept by the join instead of queried from an
// outside store). Each right record replaces its key's row, and one with
// spec.DeletedField true (an upsert Kafka source's tombstone) deletes it.
// The table is a value state per key in the keyed-state backend: it is
// in checkpoints with the right source's offsets, so a restore resumes
// reading the changelog where the checkpoint left it instead of reading
// the whole topic again. Left records are not kept; the watermark passes
// through.
type lookupJoin struct {
	*joinCore
	table *state.Value[joinEntry]
}

func newLookupJoin(j *joinCore) (*lookupJoin, error) {
	t, err := state.NewValue(j.backend, state.Descriptor{Name: "lookup-table"}, state.Serializer[joinEntry](joinEntrySer{}))
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", j.node, err)
	}
	return &lookupJoin{joinCore: j, table: t}, nil
}

// ProcessInput implements dataflow.InputProcessor.
func (op *lookupJoin) ProcessInput(input int, r *dataflow.Record, out dataflow.Output) error {
	key, err := state.NormalizeKey(r.Key)
	if err != nil {
		return op.fail(r, fmt.Errorf("join: %w (read key_by nodes)", err))
	}
	op.backend.SetCurrentKey(key)
	switch input {
	case joinRight:
		if del, _ := r.Fields.Get(spec.DeletedField).(bool); del {
			err = op.table.Delete(0)
		} else {
			err = op.table.Put(0, joinEntry{rec: dataflow.Record{Time: r.Time, Fields: r.Fields, Origin: r.Origin}})
		}
	case joinLeft:
		row, ok, gerr := op.table.Get(0)
		switch {
		case gerr != nil:
			err = gerr
		case ok:
			err = op.emit(key, r, &row.rec, r.Time, out)
		case op.outer:
			err = op.emit(key, r, nil, r.Time, out)
		}
	default:
		return fmt.Errorf("node %s: join has no input %d", op.node, input)
	}
	op.recordDone()
	return err
}

// ProcessWatermark implements dataflow.WatermarkHandler.
func (op *lookupJoin) ProcessWatermark(wm int64, out dataflow.Output) error {
	return op.advance(wm, out, func(state.Timer) error { return nil })
}
