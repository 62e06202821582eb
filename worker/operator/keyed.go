package operator

import (
	"fmt"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/state"
)

// keyed is what the built-in operators on the keyed state backend
// (dedup, running, top_n) share: the backend, built from the context so
// that a restore keeps the subtask's own key groups; its snapshot and
// restore; and the state size gauge. The state and its timers are in the
// backend's portable format (dataflow/state/snapshot.go), so a savepoint
// restores at another parallelism.
type keyedState struct {
	backend  *state.Heap
	size     *dataflow.StateSize
	snapKeys int64
	what     string // node kind, for errors
}

func newKeyed(what string, ctx *dataflow.Context) keyedState {
	cfg := state.Config{}
	if ctx != nil && ctx.MaxParallelism > 0 {
		kgs := ctx.KeyGroups
		cfg.MaxParallelism, cfg.KeyGroups = ctx.MaxParallelism, &kgs
	}
	now := func() int64 { return time.Now().UnixMilli() }
	if ctx != nil && ctx.Now != nil {
		now = ctx.Now
	}
	cfg.Now = func() int64 { return now() }
	return keyedState{backend: state.NewHeap(cfg), what: what}
}

// open registers the state size gauge.
func (k *keyedState) open(ctx *dataflow.Context) {
	if ctx != nil && ctx.Metrics != nil && k.size == nil {
		k.size = ctx.Metrics.StateSize(ctx.Node)
	}
	k.publish()
}

func (k *keyedState) publish() {
	if k.size != nil {
		k.size.Bytes.Store(k.backend.Stats().Bytes)
	}
}

// Snapshot implements dataflow.Snapshotter.
func (k *keyedState) Snapshot(int64) ([]byte, error) {
	b, err := k.backend.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("%s: snapshot: %w", k.what, err)
	}
	k.snapKeys = k.backend.Stats().Entries
	k.publish()
	return b, nil
}

// SnapshotSummary implements dataflow.SnapshotSummarizer: the state
// entries in the last snapshot.
func (k *keyedState) SnapshotSummary() dataflow.SnapshotSummary {
	return dataflow.SnapshotSummary{Keys: k.snapKeys}
}

// Restore implements dataflow.Snapshotter. The operator declared its
// states when it was built, so they are decoded here.
func (k *keyedState) Restore(states [][]byte) error {
	if err := k.backend.Restore(states); err != nil {
		return fmt.Errorf("%s: restore: %w", k.what, err)
	}
	k.publish()
	return nil
}

// eventTime checks a record's event time for an event-time operator.
func eventTime(what string, r *dataflow.Record) error {
	switch t := r.Time; {
	case t == dataflow.NoTime:
		return fmt.Errorf("%s: record has no event time (set event_time on the source)", what)
	case t >= maxEventTime || t <= -maxEventTime:
		return fmt.Errorf("%s: event time %d out of range", what, t)
	}
	return nil
}

// lateAgainst is the watermark a record is late against: the operator's,
// or that of the record's own source partition when larger, so that
// lateness is the same in every replay (as the window's, docs/spec.md
// "Windows and watermarks").
func lateAgainst(wm int64, r *dataflow.Record) int64 {
	if r.SourceWatermark != 0 && r.SourceWatermark > wm {
		return r.SourceWatermark
	}
	return wm
}
