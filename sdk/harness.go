package sdk

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/weir-stream/weir/dataflow"
)

// TestHarness runs a ProcessFunction without a cluster, for unit tests
// and examples: push records, advance the watermark and the clock, take
// snapshots and restore them (also split over several subtasks, as a
// rescaled job does), and read what the function emitted. It runs the
// same adapter as a worker. Not safe for concurrent use.
type TestHarness[IN, OUT any] struct {
	op  *processOp[IN, OUT]
	rec *recorder
	now int64
}

// Emitted is one result a function emitted.
type Emitted[T any] struct {
	Key   any
	Time  int64 // event time, or NoTimestamp
	Value T
}

// HarnessOption configures a TestHarness.
type HarnessOption func(*harnessConfig)

type harnessConfig struct {
	maxPar, par, subtask int
	restore              [][]byte
	now                  int64
	attempt              int64
}

// WithSubtask runs the function as subtask i of n with maxParallelism key
// groups (default: subtask 0 of 1 with 128).
func WithSubtask(maxParallelism, n, i int) HarnessOption {
	return func(c *harnessConfig) { c.maxPar, c.par, c.subtask = maxParallelism, n, i }
}

// WithRestore restores the snapshots (of one or several subtasks) before
// Open.
func WithRestore(snapshots ...[]byte) HarnessOption {
	return func(c *harnessConfig) { c.restore = snapshots }
}

// WithProcessingTime starts the harness's clock at now (epoch ms; default
// 0). Processing time only moves with SetProcessingTime.
func WithProcessingTime(now int64) HarnessOption {
	return func(c *harnessConfig) { c.now = now }
}

// NewTestHarness opens fn in a harness.
func NewTestHarness[IN, OUT any](fn ProcessFunction[IN, OUT], opts ...HarnessOption) (*TestHarness[IN, OUT], error) {
	cfg := harnessConfig{maxPar: dataflow.DefaultMaxParallelism, par: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxPar < 1 || cfg.par < 1 || cfg.par > cfg.maxPar || cfg.subtask < 0 || cfg.subtask >= cfg.par {
		return nil, fmt.Errorf("sdk: bad subtask %d of %d with %d key groups", cfg.subtask, cfg.par, cfg.maxPar)
	}
	in, err := recordTypeOf[IN]()
	if err != nil {
		return nil, err
	}
	out, err := recordTypeOf[OUT]()
	if err != nil {
		return nil, err
	}
	h := &TestHarness[IN, OUT]{rec: &recorder{side: map[string][]Emitted[Record]{}}, now: cfg.now}
	ctx := &dataflow.Context{
		JobName: "test", Node: "process", Subtask: cfg.subtask, Parallelism: cfg.par, MaxParallelism: cfg.maxPar,
		KeyGroups: dataflow.KeyGroupRangeFor(cfg.maxPar, cfg.par, cfg.subtask),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: &dataflow.Counters{},
		OnError: dataflow.FailOnError{Node: "process"},
	}
	h.op = newProcessOp("test.harness", fn, in, out, ctx, func() int64 { return h.now })
	if cfg.restore != nil {
		if err := h.op.Restore(cfg.restore); err != nil {
			return nil, err
		}
	}
	if err := h.op.Open(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// Process calls ProcessElement with v as a record of key at event time ts
// (NoTimestamp for none).
func (h *TestHarness[IN, OUT]) Process(key any, ts int64, v IN) error {
	return h.ProcessWithSourceWatermark(key, ts, 0, v)
}

// ProcessWithSourceWatermark is Process for a record read from a source
// partition whose watermark was srcWM (0: none) when it was read.
func (h *TestHarness[IN, OUT]) ProcessWithSourceWatermark(key any, ts, srcWM int64, v IN) error {
	r := dataflow.Record{Key: normalizeValue(key), Time: ts, SourceWatermark: srcWM, Fields: encode(h.op.in.rt, &v)}
	return h.op.Process(&r, h.rec)
}

// Watermark advances the watermark to wm, firing event-time timers.
func (h *TestHarness[IN, OUT]) Watermark(wm int64) error {
	return h.op.ProcessWatermark(wm, h.rec)
}

// SetProcessingTime moves the clock to now and fires the processing-time
// timers due.
func (h *TestHarness[IN, OUT]) SetProcessingTime(now int64) error {
	h.now = now
	return h.op.OnProcessingTime(now, h.rec)
}

// Snapshot returns the function's state as a checkpoint would store it.
func (h *TestHarness[IN, OUT]) Snapshot() ([]byte, error) { return h.op.Snapshot(0) }

// Close closes the function.
func (h *TestHarness[IN, OUT]) Close() error { return h.op.Close(h.rec) }

// Output returns and forgets what the function emitted on its main
// output.
func (h *TestHarness[IN, OUT]) Output() ([]Emitted[OUT], error) {
	var out []Emitted[OUT]
	d := decoder[OUT]{rt: h.op.out.rt}
	for _, r := range h.rec.main {
		v, err := d.decode(r.Fields)
		if err != nil {
			return nil, err
		}
		out = append(out, Emitted[OUT]{Key: r.Key, Time: r.Time, Value: v})
	}
	h.rec.main = nil
	return out, nil
}

// SideOutput returns and forgets what the function emitted to a side
// output, as untyped records.
func (h *TestHarness[IN, OUT]) SideOutput(tag string) []Emitted[Record] {
	out := h.rec.side[tag]
	delete(h.rec.side, tag)
	return out
}

// StateEntries is the number of keyed state entries the function holds.
func (h *TestHarness[IN, OUT]) StateEntries() int64 { return h.op.backend.Stats().Entries }

// Watermarks returns the watermarks forwarded downstream.
func (h *TestHarness[IN, OUT]) Watermarks() []int64 { return h.rec.wms }

type recorder struct {
	main []dataflow.Record
	side map[string][]Emitted[Record]
	wms  []int64
}

func (r *recorder) Emit(rec *dataflow.Record) error {
	r.main = append(r.main, *rec)
	return nil
}

func (r *recorder) EmitSide(tag string, rec *dataflow.Record) error {
	r.side[tag] = append(r.side[tag], Emitted[Record]{Key: rec.Key, Time: rec.Time, Value: Record{rec.Fields}})
	return nil
}

func (r *recorder) EmitWatermark(wm int64) error {
	r.wms = append(r.wms, wm)
	return nil
}
