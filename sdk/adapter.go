package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/state"
)

// processOp runs a ProcessFunction as a weir operator: it implements
// dataflow.Operator, WatermarkHandler, ProcessingTimeHandler, Snapshotter,
// AsyncSnapshotter and SnapshotSummarizer over a keyed state backend.
type processOp[IN, OUT any] struct {
	core
	fn    ProcessFunction[IN, OUT]
	in    decoder[IN]
	out   Collector[OUT]
	ctx   Context
	onErr dataflow.ErrorHandler
	fire  func(state.Timer) error // the current advance's domain

	sinceStats int
	entries    *dataflow.UserMetric
	timers     *dataflow.UserMetric
	size       *dataflow.StateSize // weir_operator_state_bytes, as the windows publish it
	snapKeys   int64
}

// cleanupPerRecord is how many expired state entries a record's call
// looks at: enough to keep up with one expiry per record.
const cleanupPerRecord = 2

// statsEvery is how many records pass between updates of the state size
// gauges.
const statsEvery = 1024

func newProcessOp[IN, OUT any](id string, fn ProcessFunction[IN, OUT], in, out *recordType, ctx *dataflow.Context, now func() int64) *processOp[IN, OUT] {
	if now == nil {
		now = func() int64 { return time.Now().UnixMilli() }
	}
	if ctx == nil {
		ctx = &dataflow.Context{}
	}
	o := &processOp[IN, OUT]{fn: fn, in: decoder[IN]{rt: in}}
	o.core = core{id: id, node: ctx.Node, dctx: ctx, now: now, ts: NoTimestamp}
	kgs := ctx.KeyGroups
	cfg := state.Config{MaxParallelism: ctx.MaxParallelism, Now: func() int64 { return o.core.now() }}
	if ctx.MaxParallelism > 0 {
		cfg.KeyGroups = &kgs
	}
	o.backend = state.NewHeap(cfg)
	o.out = Collector[OUT]{c: &o.core, rt: out}
	o.ctx = Context{c: &o.core}
	o.setContext(ctx)
	return o
}

func (o *processOp[IN, OUT]) setContext(ctx *dataflow.Context) {
	o.dctx = ctx
	o.node = ctx.Node
	if ctx.Now != nil {
		o.now = ctx.Now
	}
	o.logger = ctx.Logger
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if ctx.Metrics != nil {
		o.metrics = &ctx.Metrics.User
	} else if o.metrics == nil {
		o.metrics = &dataflow.UserMetrics{}
	}
	o.onErr = ctx.OnError
	if o.onErr == nil {
		o.onErr = dataflow.FailOnError{Node: o.node}
	}
}

// userPanic is a panic in user code, with its stack: it fails the task
// whatever the node's error policy.
type userPanic struct {
	op, where string
	val       any
	stack     []byte
}

func (p *userPanic) Error() string {
	return fmt.Sprintf("operator %s panicked in %s: %v\n%s", p.op, p.where, p.val, p.stack)
}

// recoverUser turns a panic of the user's code into a *userPanic.
func (o *processOp[IN, OUT]) recoverUser(where string, err *error) {
	if r := recover(); r != nil {
		*err = &userPanic{op: o.id, where: where, val: r, stack: debug.Stack()}
	}
}

// Open implements dataflow.Operator: the function's Open, with the state
// restored already.
func (o *processOp[IN, OUT]) Open(ctx *dataflow.Context) (err error) {
	if ctx != nil {
		o.setContext(ctx)
	}
	sys := func(name, help string) *dataflow.UserMetric {
		return o.metrics.Define(o.node, name, help, dataflow.MetricGauge, nil)
	}
	// Names starting with "state_" are the operator's own; the worker
	// exports them as weir_keyed_state_* (docs/metrics.md).
	o.entries = sys(stateEntriesMetric, "Keyed state entries of the operator.")
	o.timers = sys(stateTimersMetric, "Timers registered by the operator.")
	if o.dctx.Metrics != nil && o.size == nil {
		o.size = o.dctx.Metrics.StateSize(o.node)
	}
	if err := o.callOpen(); err != nil {
		return fmt.Errorf("operator %s: open: %w", o.id, err)
	}
	if o.openErr != nil {
		return fmt.Errorf("operator %s: open: %w", o.id, o.openErr)
	}
	o.updateStats()
	return nil
}

// The state gauges' names as the SDK defines them.
const (
	stateEntriesMetric = dataflow.StateMetricPrefix + "entries"
	stateTimersMetric  = dataflow.StateMetricPrefix + "timers"
)

func (o *processOp[IN, OUT]) callOpen() (err error) {
	defer o.recoverUser("Open", &err)
	return o.fn.Open(&OpenContext{c: &o.core})
}

// Process implements dataflow.Operator.
func (o *processOp[IN, OUT]) Process(r *dataflow.Record, out dataflow.Output) error {
	key, err := state.NormalizeKey(r.Key)
	if err != nil {
		return o.fail(r, fmt.Errorf("operator %s: %w (key the stream with key_by)", o.id, err))
	}
	v, err := o.in.decode(r.Fields)
	if err != nil {
		return o.fail(r, fmt.Errorf("operator %s: input: %w", o.id, err))
	}
	o.backend.SetCurrentKey(key)
	o.key, o.ts, o.srcWM, o.core.out, o.inCall = key, r.Time, r.SourceWatermark, out, true
	err = o.callProcess(v)
	o.inCall, o.core.out, o.key, o.ts, o.srcWM = false, nil, nil, NoTimestamp, 0
	if err != nil {
		var p *userPanic
		if errors.As(err, &p) {
			return err
		}
		return o.fail(r, err)
	}
	o.backend.Cleanup(cleanupPerRecord)
	if o.sinceStats++; o.sinceStats >= statsEvery {
		o.updateStats()
	}
	return nil
}

func (o *processOp[IN, OUT]) callProcess(v IN) (err error) {
	defer o.recoverUser("ProcessElement", &err)
	return o.fn.ProcessElement(&o.ctx, v, &o.out)
}

// fail hands a record that failed to the node's error policy.
func (o *processOp[IN, OUT]) fail(r *dataflow.Record, err error) error {
	herr := o.onErr.Handle(r, nil, err)
	if herr == nil {
		return nil
	}
	var re *dataflow.RecordError
	if errors.As(herr, &re) {
		return herr
	}
	return fmt.Errorf("node %s: %w", o.node, herr)
}

// ProcessWatermark implements dataflow.WatermarkHandler: fires the
// event-time timers the watermark passed, then forwards it.
func (o *processOp[IN, OUT]) ProcessWatermark(wm int64, out dataflow.Output) error {
	if err := o.advance(EventTime, wm, out); err != nil {
		return err
	}
	o.updateStats() // a few loads and stores: the size gauges follow the watermark as windows' do
	return out.EmitWatermark(wm)
}

// NextProcessingTime implements dataflow.ProcessingTimeHandler.
func (o *processOp[IN, OUT]) NextProcessingTime() (int64, bool) {
	return o.backend.Timers().NextProcessingTime()
}

// OnProcessingTime implements dataflow.ProcessingTimeHandler.
func (o *processOp[IN, OUT]) OnProcessingTime(now int64, out dataflow.Output) error {
	return o.advance(ProcessingTime, now, out)
}

func (o *processOp[IN, OUT]) advance(domain TimeDomain, upTo int64, out dataflow.Output) error {
	o.core.out, o.inCall = out, true
	defer func() { o.inCall, o.core.out, o.key, o.ts = false, nil, nil, NoTimestamp }()
	fire := func(t state.Timer) error {
		o.key = t.Key
		o.ts = t.Time
		if domain == ProcessingTime {
			o.ts = NoTimestamp
		}
		if err := o.callOnTimer(Timer{Time: t.Time, Domain: domain}); err != nil {
			var p *userPanic
			if errors.As(err, &p) {
				return err
			}
			return fmt.Errorf("operator %s: OnTimer (key %v, %s %d): %w", o.id, t.Key, domain, t.Time, err)
		}
		return nil
	}
	if domain == EventTime {
		return o.backend.Timers().AdvanceWatermark(upTo, fire)
	}
	return o.backend.Timers().AdvanceProcessingTime(upTo, fire)
}

func (o *processOp[IN, OUT]) callOnTimer(t Timer) (err error) {
	defer o.recoverUser("OnTimer", &err)
	return o.fn.OnTimer(&o.ctx, t, &o.out)
}

// Snapshot implements dataflow.Snapshotter.
func (o *processOp[IN, OUT]) Snapshot(int64) ([]byte, error) {
	b, err := o.backend.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("operator %s: snapshot: %w", o.id, err)
	}
	o.updateStats()
	o.snapKeys = o.backend.Stats().Entries
	return b, nil
}

// CaptureSnapshot implements dataflow.AsyncSnapshotter: at the barrier
// the backend copies its live entries and timers; the encoding runs on the
// task's upload goroutine while records flow again.
func (o *processOp[IN, OUT]) CaptureSnapshot(int64) (func() ([]byte, dataflow.SnapshotSummary, error), error) {
	encode, err := o.backend.CaptureSnapshot()
	if err != nil {
		return nil, fmt.Errorf("operator %s: snapshot: %w", o.id, err)
	}
	o.updateStats()
	sum := dataflow.SnapshotSummary{Keys: o.backend.Stats().Entries}
	o.snapKeys = sum.Keys
	return func() ([]byte, dataflow.SnapshotSummary, error) {
		b, _, err := encode()
		if err != nil {
			return nil, dataflow.SnapshotSummary{}, fmt.Errorf("operator %s: snapshot: %w", o.id, err)
		}
		return b, sum, nil
	}, nil
}

// SnapshotSummary implements dataflow.SnapshotSummarizer.
func (o *processOp[IN, OUT]) SnapshotSummary() dataflow.SnapshotSummary {
	return dataflow.SnapshotSummary{Keys: o.snapKeys}
}

// Restore implements dataflow.Snapshotter; states are decoded when Open
// declares them.
func (o *processOp[IN, OUT]) Restore(states [][]byte) error {
	if err := o.backend.Restore(states); err != nil {
		return fmt.Errorf("operator %s: %w", o.id, err)
	}
	return nil
}

// NotifyCheckpointComplete implements dataflow.CheckpointListener for
// functions that implement CheckpointListener.
func (o *processOp[IN, OUT]) NotifyCheckpointComplete(ctx context.Context, id int64) (err error) {
	l, ok := o.fn.(CheckpointListener)
	if !ok {
		return nil
	}
	defer o.recoverUser("CheckpointComplete", &err)
	return l.CheckpointComplete(ctx, id)
}

// CheckpointListener is implemented by functions that act when a
// checkpoint that covers their state completes (to publish results
// exactly once to an outside system, for example).
type CheckpointListener interface {
	CheckpointComplete(ctx context.Context, checkpointID int64) error
}

// Close implements dataflow.Operator.
func (o *processOp[IN, OUT]) Close(dataflow.Output) (err error) {
	if c, ok := o.fn.(Closer); ok {
		defer o.recoverUser("Close", &err)
		return c.Close()
	}
	return nil
}

func (o *processOp[IN, OUT]) updateStats() {
	o.sinceStats = 0
	if o.entries == nil {
		return
	}
	s := o.backend.Stats()
	o.entries.Set(float64(s.Entries))
	o.timers.Set(float64(s.Timers))
	if o.size != nil {
		o.size.Bytes.Store(s.Bytes)
	}
}
