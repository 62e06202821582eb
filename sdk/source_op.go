package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/weir-stream/weir/connectors/eventtime"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Defaults of a source's event_time, as for the built-in sources.
const (
	defaultWatermarkInterval = 200 * time.Millisecond
	defaultIdleTimeout       = 30 * time.Second
	// tickWithoutEventTime is how often a source without event_time
	// looks at its clock (nothing to emit; it keeps the loop simple).
	tickWithoutEventTime = time.Second
	// emitQueue is how many records Read may hand over ahead of the task.
	emitQueue = 256
)

// sourceOp runs a Source as a weir source. The user's Read runs on its
// own goroutine and hands records over a channel to Run's goroutine,
// which alone talks to the task: it holds the checkpoint lock around
// each record's position change and Emit, and around watermarks, so a
// barrier falls between two records and the snapshot holds exactly the
// positions of the records before it.
type sourceOp[OUT any] struct {
	core
	src Source[OUT]
	rt  *recordType

	etField     string
	etProg      *expr.Program
	wmInterval  time.Duration
	idleTimeout time.Duration
	outOfOrder  time.Duration

	// restored is every restored split's position, by id; the ones this
	// subtask owns are used when Run has listed the splits.
	restored map[string]splitState
	// mine are the splits this subtask reads, by id, with their index in
	// the tracker; nil until Run has listed them. Guarded by the
	// checkpoint lock once Run has started.
	mine    map[string]*splitState
	tracker *eventtime.Tracker
	idle    bool
	lk      sync.Locker

	records chan emitted
	readCtx context.Context
	onErr   dataflow.ErrorHandler
}

// splitState is one split's position and largest event time; Index is
// its index in the Splits list, which decides its subtask.
type splitState struct {
	ID       string `json:"id"`
	Index    int    `json:"index"`
	Position []byte `json:"position,omitempty"`
	MaxTs    *int64 `json:"max_ts,omitempty"`
}

type emitted struct {
	split string
	pos   []byte
	f     dataflow.Fields
}

var (
	_ dataflow.Source             = (*sourceOp[Record])(nil)
	_ dataflow.Snapshotter        = (*sourceOp[Record])(nil)
	_ dataflow.SnapshotSummarizer = (*sourceOp[Record])(nil)
)

func newSourceOp[OUT any](id string, src Source[OUT], rt *recordType, node *spec.Source, ctx *dataflow.Context) (*sourceOp[OUT], error) {
	o := &sourceOp[OUT]{src: src, rt: rt, lk: &sync.Mutex{}}
	o.core = core{id: id, ts: NoTimestamp}
	o.setContext(ctx)
	if node != nil && node.EventTime != nil {
		et := node.EventTime
		prog, err := expr.Compile(et.Field, node.Schema, expr.Number)
		if err != nil {
			return nil, fmt.Errorf("event_time.field: %w", err)
		}
		o.etField, o.etProg = et.Field, prog
		o.outOfOrder = et.MaxOutOfOrderness.D()
		o.wmInterval = et.WatermarkInterval.D()
		if o.wmInterval <= 0 {
			o.wmInterval = defaultWatermarkInterval
		}
		o.idleTimeout = defaultIdleTimeout
		if et.IdleTimeout != nil {
			o.idleTimeout = et.IdleTimeout.D()
		}
	}
	return o, nil
}

func (o *sourceOp[OUT]) setContext(ctx *dataflow.Context) {
	if ctx == nil {
		ctx = &dataflow.Context{}
	}
	o.dctx, o.node = ctx, ctx.Node
	o.now = ctx.Now
	if o.now == nil {
		o.now = func() int64 { return time.Now().UnixMilli() }
	}
	o.logger = connectorLogger(ctx)
	o.metrics = userMetrics(ctx, o.metrics)
	o.onErr = ctx.OnError
	if o.onErr == nil {
		o.onErr = dataflow.FailOnError{Node: o.node}
	}
}

func (o *sourceOp[OUT]) call(where string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &userPanic{op: o.id, where: where, val: r, stack: stack()}
		}
	}()
	return f()
}

// Open implements dataflow.Source.
func (o *sourceOp[OUT]) Open(ctx *dataflow.Context) error {
	if ctx != nil {
		o.setContext(ctx)
	}
	if err := o.call("Open", func() error { return o.src.Open(&ConnectorContext{c: &o.core}) }); err != nil {
		return fmt.Errorf("source %s: open: %w", o.id, err)
	}
	if o.openErr != nil {
		return fmt.Errorf("source %s: open: %w", o.id, o.openErr)
	}
	return nil
}

// Close implements dataflow.Source.
func (o *sourceOp[OUT]) Close() error {
	if c, ok := o.src.(Closer); ok {
		return o.call("Close", c.Close)
	}
	return nil
}

// owns reports whether split index k is this subtask's.
func (o *sourceOp[OUT]) owns(k int) bool {
	return k%max(o.dctx.Parallelism, 1) == o.dctx.Subtask
}

// Run lists the splits, starts Read and feeds its records to out.
func (o *sourceOp[OUT]) Run(ctx context.Context, out dataflow.SourceOutput) error {
	if cl, ok := out.(interface{ CheckpointLock() sync.Locker }); ok {
		o.lk = cl.CheckpointLock()
	}
	var ids []string
	err := o.call("Splits", func() (err error) { ids, err = o.src.Splits(ctx); return err })
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("source %s: splits: %w", o.id, err)
	}
	seen := make(map[string]bool, len(ids))
	mine := map[string]*splitState{}
	var splits []Split
	nowT := time.UnixMilli(o.now())
	var tracker *eventtime.Tracker
	if o.etProg != nil {
		tracker = eventtime.NewTracker(o.outOfOrder, o.idleTimeout)
	}
	for k, id := range ids {
		if id == "" || seen[id] {
			return fmt.Errorf("source %s: Splits returned split id %q twice or empty (index %d)", o.id, id, k)
		}
		seen[id] = true
		if !o.owns(k) {
			continue
		}
		st := &splitState{ID: id, Index: k}
		if r, ok := o.restored[id]; ok {
			st.Position, st.MaxTs = r.Position, r.MaxTs
		}
		mine[id] = st
		splits = append(splits, Split{ID: id, Position: slices.Clone(st.Position)})
		if tracker != nil {
			tracker.AddPartition(int32(k), nowT)
			if st.MaxTs != nil {
				tracker.Restore(int32(k), *st.MaxTs, nowT)
			}
		}
	}
	o.lk.Lock()
	o.mine, o.tracker = mine, tracker
	o.lk.Unlock()
	if len(splits) == 0 {
		if err := out.MarkIdle(true); err != nil {
			return err
		}
		o.idle = true
	}

	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	o.records, o.readCtx = make(chan emitted, emitQueue), readCtx
	readDone := make(chan error, 1)
	go func() {
		readDone <- o.call("Read", func() error { return o.src.Read(readCtx, splits, &SourceOutput[OUT]{o: o}) })
	}()
	interval := o.wmInterval
	if interval == 0 {
		interval = tickWithoutEventTime
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			// Cancelled: Read's context is too. A Read that does not
			// return is not waited for (its Emit fails from now on), so it
			// cannot hold the cancellation of the task up.
			return nil
		case e := <-o.records:
			if err := o.handle(e, out); err != nil {
				stopRead()
				<-readDone
				return err
			}
		case <-ticker.C:
			if err := o.tick(out); err != nil {
				stopRead()
				<-readDone
				return err
			}
		case err := <-readDone:
			// Read emits nothing more: hand over what it queued.
		drain:
			for {
				select {
				case e := <-o.records:
					if herr := o.handle(e, out); herr != nil {
						return herr
					}
				default:
					break drain
				}
			}
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("source %s: read: %w", o.id, err)
			}
			return nil
		}
	}
}

// emit is SourceOutput.Emit, on Read's goroutine.
func (o *sourceOp[OUT]) emit(split string, pos []byte, f dataflow.Fields) error {
	select {
	case o.records <- emitted{split: split, pos: pos, f: f}:
		return nil
	case <-o.readCtx.Done():
		return o.readCtx.Err()
	}
}

// handle stamps and emits one record and moves its split's position,
// under the checkpoint lock.
func (o *sourceOp[OUT]) handle(e emitted, out dataflow.SourceOutput) error {
	o.lk.Lock()
	defer o.lk.Unlock()
	st, ok := o.mine[e.split]
	if !ok {
		return fmt.Errorf("source %s: %w: %q", o.id, ErrUnknownSplit, e.split)
	}
	rec := dataflow.Record{Time: dataflow.NoTime, Fields: e.f, Origin: dataflow.Origin{Source: o.node}}
	if o.etProg != nil {
		v, err := o.etProg.Eval(e.f)
		if err == nil {
			rec.Time, err = eventtime.Millis(v)
		}
		if err != nil {
			// A bad record is the error policy's; its position counts.
			st.Position = e.pos
			return o.onErr.Handle(&rec, nil, fmt.Errorf("split %q: event_time %q: %w", e.split, o.etField, err))
		}
		now := time.UnixMilli(o.now())
		if wm := o.tracker.Observe(int32(st.Index), rec.Time, now); wm != eventtime.NoWatermark {
			rec.SourceWatermark = wm
		}
		if rec.Time > ptrOr(st.MaxTs) {
			t := rec.Time
			st.MaxTs = &t
		}
	}
	if o.idle {
		o.idle = false
		if err := out.MarkIdle(false); err != nil {
			return err
		}
	}
	// Moved before Emit, under the lock: a barrier injected inside Emit
	// follows this record.
	st.Position = e.pos
	return out.Emit(&rec)
}

func ptrOr(p *int64) int64 {
	if p == nil {
		return eventtime.NoWatermark
	}
	return *p
}

// tick emits the watermark when it moved and marks the subtask idle when
// every split is.
func (o *sourceOp[OUT]) tick(out dataflow.SourceOutput) error {
	if o.tracker == nil {
		return nil
	}
	o.lk.Lock()
	defer o.lk.Unlock()
	wm, changed, allIdle := o.tracker.Advance(time.UnixMilli(o.now()))
	if allIdle {
		if !o.idle {
			o.idle = true
			return out.MarkIdle(true)
		}
		return nil
	}
	if changed {
		return out.EmitWatermark(wm)
	}
	return nil
}

// sourceStateVersion is the version of a user source's state.
const sourceStateVersion = 1

type sourceStateJSON struct {
	Version int          `json:"version"`
	Splits  []splitState `json:"splits"`
}

// Snapshot implements dataflow.Snapshotter: every owned split's position
// and largest event time. Before Run has listed the splits, the restored
// ones this subtask owns.
func (o *sourceOp[OUT]) Snapshot(int64) ([]byte, error) {
	st := sourceStateJSON{Version: sourceStateVersion, Splits: []splitState{}}
	if o.mine != nil {
		for _, s := range o.mine {
			st.Splits = append(st.Splits, *s)
		}
	} else {
		for _, s := range o.restored {
			if o.owns(s.Index) {
				st.Splits = append(st.Splits, s)
			}
		}
	}
	slices.SortFunc(st.Splits, func(a, b splitState) int { return a.Index - b.Index })
	return json.Marshal(st)
}

// SnapshotSummary implements dataflow.SnapshotSummarizer.
func (o *sourceOp[OUT]) SnapshotSummary() dataflow.SnapshotSummary { return dataflow.SnapshotSummary{} }

// Restore implements dataflow.Snapshotter: the positions of every split
// of every given state; Run picks the ones this subtask reads.
func (o *sourceOp[OUT]) Restore(states [][]byte) error {
	o.restored = map[string]splitState{}
	for i, b := range states {
		st, err := decodeSourceState(b)
		if err != nil {
			return fmt.Errorf("source %s: restored state %d: %w", o.id, i, err)
		}
		for _, s := range st.Splits {
			if old, dup := o.restored[s.ID]; dup && !bytes.Equal(old.Position, s.Position) {
				return fmt.Errorf("source %s: restored states disagree on split %q's position", o.id, s.ID)
			}
			o.restored[s.ID] = s
		}
	}
	return nil
}

// maxSourceStateBytes bounds a state the decoder accepts.
const maxSourceStateBytes = 64 << 20

func decodeSourceState(b []byte) (sourceStateJSON, error) {
	var st sourceStateJSON
	if len(b) == 0 {
		return st, nil
	}
	if len(b) > maxSourceStateBytes {
		return st, fmt.Errorf("source state of %d bytes, more than %d", len(b), maxSourceStateBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("source state: %w", err)
	}
	if dec.More() {
		return st, errors.New("source state: data after the state")
	}
	if st.Version != sourceStateVersion {
		return st, fmt.Errorf("source state version %d, this weir reads version %d", st.Version, sourceStateVersion)
	}
	for i, s := range st.Splits {
		if s.ID == "" || s.Index < 0 {
			return st, fmt.Errorf("source state: splits[%d]: id %q, index %d", i, s.ID, s.Index)
		}
	}
	return st, nil
}
