package operator

import (
	"fmt"
	"math"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// dedup passes the first record of each key and drops the key's records
// that follow within a bound of event time, like Flink SQL's
// deduplication (ROW_NUMBER() ... = 1, keep first row) with the state's
// lifetime in event time, or Kafka Streams' deduplication example (a
// window store of the ids seen).
//
// Per key it keeps one value: until, the event time of the last record
// that passed plus within. A record at t passes when t ≥ until (or the
// key has none) and sets until to t+within; otherwise it is a duplicate.
// An event-time timer at until−1 drops the value once the watermark gets
// there: every record not behind the watermark then has t ≥ until and
// would pass anyway. A record at or behind the watermark is late (its
// duplicate may be forgotten already), and goes to the late policy, so
// the output never depends on when a watermark arrived.
type dedup struct {
	base
	keyedState
	within   int64
	lateSide bool
	wm       int64
	until    *state.Value[int64]
}

const dedupState = "until"

func newDedup(b base, d *spec.Dedup, ctx *dataflow.Context) (*dedup, error) {
	within, err := span("dedup within", d.Within)
	if err != nil {
		return nil, err
	}
	op := &dedup{base: b, keyedState: newKeyed("dedup", ctx), within: within, wm: math.MinInt64}
	switch d.Late {
	case "", "drop":
	case "side_output":
		op.lateSide = true
	default:
		return nil, fmt.Errorf("dedup: late %q: want drop or side_output", d.Late)
	}
	op.until, err = state.NewValue[int64](op.backend, state.Descriptor{Name: dedupState}, nil)
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	return op, nil
}

// Open implements dataflow.Operator.
func (d *dedup) Open(ctx *dataflow.Context) error {
	if err := d.base.Open(ctx); err != nil {
		return err
	}
	d.open(ctx)
	return nil
}

// Process passes r unless it is a duplicate or late.
func (d *dedup) Process(r *dataflow.Record, out dataflow.Output) error {
	if err := eventTime("dedup", r); err != nil {
		return d.fail(r, err)
	}
	key, err := normKey(r.Key)
	if err != nil {
		return d.fail(r, fmt.Errorf("dedup: %w (key the stream with key_by)", err))
	}
	t := r.Time
	if t <= lateAgainst(d.wm, r) {
		if d.lateSide {
			return out.EmitSide(LateTag, r)
		}
		if m := d.metrics(); m != nil {
			m.DroppedLate.Add(1)
		}
		return nil
	}
	d.backend.SetCurrentKey(key)
	until, ok, err := d.until.Get(0)
	if err != nil {
		return err
	}
	if ok && t < until {
		return nil // a duplicate
	}
	if ok {
		d.backend.Timers().DeleteEventTime(0, until-1)
	}
	until = t + d.within
	if err := d.until.Put(0, until); err != nil {
		return err
	}
	d.backend.Timers().RegisterEventTime(0, until-1)
	return out.Emit(r)
}

// ProcessWatermark forgets the keys whose bound the watermark passed and
// forwards it. A watermark that does not advance is ignored.
func (d *dedup) ProcessWatermark(wm int64, out dataflow.Output) error {
	if wm <= d.wm {
		return nil
	}
	d.wm = wm
	err := d.backend.Timers().AdvanceWatermark(wm, func(state.Timer) error { return d.until.Delete(0) })
	if err != nil {
		return err
	}
	d.publish()
	return out.EmitWatermark(wm)
}
