package sdk

import (
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// ProcessFunction is user logic on a keyed stream: a spec node
// `process: {operator: <id>}` after a key_by. weir calls its methods on
// one goroutine per subtask, never concurrently; the key of the record or
// timer is current during each call, and state handles read and write
// that key's state.
//
// An error returned by ProcessElement goes to the node's on_error policy
// with the record (fail, skip or dead_letter); an error from Open or
// OnTimer, and a panic anywhere, fails the task, which restarts from the
// last checkpoint.
type ProcessFunction[IN, OUT any] interface {
	// Open is called once per subtask before the first record, after the
	// state was restored: declare state handles and metrics here.
	Open(ctx *OpenContext) error
	// ProcessElement is called for each record.
	ProcessElement(ctx *Context, in IN, out *Collector[OUT]) error
	// OnTimer is called when a timer registered through ctx.Timers()
	// fires: event-time timers in order as the watermark passes them,
	// processing-time timers when the clock does.
	OnTimer(ctx *Context, t Timer, out *Collector[OUT]) error
}

// Closer is implemented by functions that hold resources; Close is called
// once when the subtask ends.
type Closer interface {
	Close() error
}

// TimeDomain says which clock a timer follows.
type TimeDomain uint8

const (
	// EventTime timers fire when the watermark reaches their time.
	EventTime TimeDomain = iota + 1
	// ProcessingTime timers fire when the wall clock does.
	ProcessingTime
)

// String names the domain ("event time", "processing time").
func (d TimeDomain) String() string {
	switch d {
	case EventTime:
		return "event time"
	case ProcessingTime:
		return "processing time"
	}
	return "unknown time domain"
}

// Timer is a timer that fired: its time (epoch milliseconds) and domain.
type Timer struct {
	Time   int64
	Domain TimeDomain
}

// NoTimestamp is Context.Timestamp when the record has no event time (its
// source sets no event_time) or a processing-time timer fired.
const NoTimestamp int64 = math.MinInt64

// ErrNoKey is returned by a state handle used outside ProcessElement and
// OnTimer, where no key is current.
var ErrNoKey = errors.New("sdk: state used outside ProcessElement or OnTimer (no current key)")

// core is what the handles and contexts of one operator instance share.
type core struct {
	id      string
	node    string
	dctx    *dataflow.Context
	backend state.Backend
	now     func() int64
	metrics *dataflow.UserMetrics
	logger  *slog.Logger
	openErr error

	// Set for the duration of a call into user code.
	inCall bool
	key    any
	ts     int64
	srcWM  int64 // the record's source partition watermark (0: none)
	out    dataflow.Output
	rec    dataflow.Record
}

func (c *core) checkCall() error {
	if !c.inCall {
		return ErrNoKey
	}
	return nil
}

// emit sends fields to the main output (tag "") or a side output, keyed
// by the current key.
func (c *core) emit(tag string, ts int64, f dataflow.Fields) error {
	if c.out == nil {
		return errors.New("sdk: emit outside ProcessElement or OnTimer")
	}
	c.rec = dataflow.Record{Key: c.key, Time: ts, Fields: f}
	var err error
	if tag == "" {
		err = c.out.Emit(&c.rec)
	} else {
		err = c.out.EmitSide(tag, &c.rec)
	}
	c.rec = dataflow.Record{}
	return err
}

// OpenContext is what Open may use: where the function runs, its state
// declarations (NewValue, NewMap, NewList, NewReducing, NewAggregating)
// and its metrics.
type OpenContext struct{ c *core }

// Operator is the registered id of the operator.
func (o *OpenContext) Operator() string { return o.c.id }

// Node is the node's name in the job spec.
func (o *OpenContext) Node() string { return o.c.node }

// JobName is the job's name.
func (o *OpenContext) JobName() string { return o.c.dctx.JobName }

// Subtask is this subtask's index, from 0.
func (o *OpenContext) Subtask() int { return o.c.dctx.Subtask }

// Parallelism is the node's number of subtasks.
func (o *OpenContext) Parallelism() int { return max(o.c.dctx.Parallelism, 1) }

// Logger is the subtask's logger (job, node and subtask attached).
func (o *OpenContext) Logger() *slog.Logger { return o.c.logger }

// Metrics is where the function defines its metrics.
func (o *OpenContext) Metrics() *Metrics { return &Metrics{c: o.c} }

// Context is what ProcessElement and OnTimer may use: the current key and
// times, timers, side outputs. It is valid only during the call.
type Context struct{ c *core }

// Key is the current key, as key_by computed it: nil, bool, int64,
// float64 or string.
func (x *Context) Key() any { return x.c.key }

// Timestamp is the event time of the record being processed, or the time
// of the event-time timer firing (epoch ms); NoTimestamp otherwise.
func (x *Context) Timestamp() int64 { return x.c.ts }

// Watermark is the current event-time watermark (epoch ms; math.MinInt64
// before the first): the subtask's input watermark, or, while a record is
// processed, the watermark of the partition the record was read from when
// that is further on. Judging a record late against it gives the same
// answer in every replay after a restore, as the built-in windows do
// (docs/spec.md, "Windows and watermarks").
func (x *Context) Watermark() int64 {
	wm := x.c.backend.Timers().Watermark()
	if x.c.srcWM != 0 && x.c.srcWM > wm {
		return x.c.srcWM
	}
	return wm
}

// ProcessingTime is the current wall-clock time (epoch ms).
func (x *Context) ProcessingTime() int64 { return x.c.now() }

// Timers registers and deletes the current key's timers.
func (x *Context) Timers() TimerService { return TimerService{x.c} }

// Logger is the subtask's logger.
func (x *Context) Logger() *slog.Logger { return x.c.logger }

// TimerService registers and deletes timers for the current key. A key
// has at most one timer per time and domain: registering it again does
// nothing. Timers are in checkpoints and savepoints and move with their
// key when the job is rescaled.
type TimerService struct{ c *core }

// RegisterEventTimeTimer registers a timer that fires when the watermark
// reaches ts (epoch ms). A timer at or before the current watermark fires
// with the next watermark.
func (t TimerService) RegisterEventTimeTimer(ts int64) { t.c.backend.Timers().RegisterEventTime(0, ts) }

// DeleteEventTimeTimer deletes the current key's event-time timer at ts.
func (t TimerService) DeleteEventTimeTimer(ts int64) { t.c.backend.Timers().DeleteEventTime(0, ts) }

// RegisterProcessingTimeTimer registers a timer that fires when the wall
// clock reaches ts (epoch ms).
func (t TimerService) RegisterProcessingTimeTimer(ts int64) {
	t.c.backend.Timers().RegisterProcessingTime(0, ts)
}

// DeleteProcessingTimeTimer deletes the current key's processing-time
// timer at ts.
func (t TimerService) DeleteProcessingTimeTimer(ts int64) {
	t.c.backend.Timers().DeleteProcessingTime(0, ts)
}

// Collector sends a function's results to the node's main output, keyed
// by the current key.
type Collector[OUT any] struct {
	c  *core
	rt *recordType
}

// Emit sends v with the current timestamp (Context.Timestamp) as its
// event time.
func (o *Collector[OUT]) Emit(v OUT) error { return o.c.emit("", o.c.ts, encode(o.rt, &v)) }

// EmitAt sends v with event time ts (epoch ms; NoTimestamp for none).
func (o *Collector[OUT]) EmitAt(ts int64, v OUT) error { return o.c.emit("", ts, encode(o.rt, &v)) }

// SideOutput is a typed side output: records a downstream node reads as
// "<process node>.<tag>". Declare one as a package variable.
type SideOutput[T any] struct {
	tag string
	rt  *recordType
}

// NewSideOutput returns the side output tag with record type T (a struct
// with weir tags, or Record). It panics when tag is not a name of
// letters, digits and '_' or T cannot be a record: both are programming
// errors, found when the package initializes.
func NewSideOutput[T any](tag string) SideOutput[T] {
	if !validName(tag) {
		panic(fmt.Sprintf("sdk.NewSideOutput: tag %q: want letters, digits and '_'", tag))
	}
	if tag == spec.TagLate {
		panic(`sdk.NewSideOutput: tag "late" is reserved for windows`)
	}
	rt, err := recordTypeOf[T]()
	if err != nil {
		panic("sdk.NewSideOutput: " + err.Error())
	}
	return SideOutput[T]{tag: tag, rt: rt}
}

// Tag is the side output's name.
func (s SideOutput[T]) Tag() string { return s.tag }

// Emit sends v to the side output with the current timestamp.
func (s SideOutput[T]) Emit(ctx *Context, v T) error {
	if s.rt == nil {
		return errors.New("sdk: side output not made with NewSideOutput")
	}
	return ctx.c.emit(s.tag, ctx.c.ts, encode(s.rt, &v))
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
