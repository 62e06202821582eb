package operator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/dataflow/state"
)

// Join inputs, as dataflow.InputProcessor numbers them.
const (
	joinLeft  = 0
	joinRight = 1
)

// NewJoin builds a join node's operator (docs/spec.md, "join"): an
// interval, windowed or lookup join of its two keyed inputs, inner or left
// outer. The first two keep their records in the keyed-state backend
// (dataflow/state), with event-time timers that drop them once the
// watermark has passed every time they could still match; the lookup
// join keeps its table there. So the state is in checkpoints grouped by
// key group and follows a rescale.
func NewJoin(node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	if node == nil || node.Join == nil {
		return nil, errors.New("operator: not a join node")
	}
	j, err := newJoinCore(node, ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	jn := node.Join
	switch {
	case jn.Interval != nil:
		return newIntervalJoin(j, jn.Interval)
	case jn.Window != nil && jn.Window.Session != nil:
		return newSessionJoin(j, jn.Window.Session.Gap.D().Milliseconds())
	case jn.Window != nil:
		return newWindowJoin(j, jn.Window)
	case jn.Lookup != nil:
		return newLookupJoin(j)
	}
	return nil, fmt.Errorf("node %s: join has no interval, window or lookup", node.Name)
}

// joinCore is what both joins share: the state backend, the output shape
// and the bookkeeping of lateness and state size.
type joinCore struct {
	base
	outer       bool
	leftPrefix  string
	rightPrefix string
	rightNulls  []string // an unmatched left record's right fields (null)
	using       string   // the shared key field: once, from the left
	backend     *state.Heap
	wm          int64 // the combined input watermark
	shapes      dataflow.ShapeCache
	names       []string
	vals        []any
	size        *dataflow.StateSize
	snapKeys    int64
	sinceStats  int
	emitted     dataflow.Record
	// win is the window being fired, [start, end), whose bounds a
	// windowed join's results carry as window_start and window_end; nil
	// for interval and lookup joins.
	win         *joinSession
	outerHoldMs int64 // how far the forwarded watermark trails the input's
	forwardedWM int64
}

func newJoinCore(node *spec.Node, ctx *dataflow.Context) (*joinCore, error) {
	jn := node.Join
	j := &joinCore{
		base:        base{node: node.Name},
		outer:       jn.Type == spec.JoinLeft,
		leftPrefix:  jn.LeftPrefix,
		rightPrefix: jn.RightPrefix,
		using:       jn.Using(),
		wm:          math.MinInt64,
		forwardedWM: math.MinInt64,
	}
	switch jn.Type {
	case spec.JoinInner, spec.JoinLeft:
	default:
		return nil, fmt.Errorf("join: type %q: want inner or left", jn.Type)
	}
	for _, f := range jn.RightFields() {
		j.rightNulls = append(j.rightNulls, jn.RightPrefix+f)
	}
	if ctx == nil {
		ctx = &dataflow.Context{}
	}
	j.setContext(ctx)
	cfg := state.Config{MaxParallelism: ctx.MaxParallelism, Now: ctx.Now}
	if ctx.MaxParallelism > 0 {
		kgs := ctx.KeyGroups
		cfg.KeyGroups = &kgs
	}
	j.backend = state.NewHeap(cfg)
	return j, nil
}

// Open takes the context and starts publishing the state size
// (weir_operator_state_bytes).
func (j *joinCore) Open(ctx *dataflow.Context) error {
	if err := j.base.Open(ctx); err != nil {
		return err
	}
	if m := j.metrics(); m != nil && j.size == nil {
		j.size = m.StateSize(j.node)
	}
	j.publishStateSize()
	return nil
}

// Process is called only when the runtime does not know the inputs apart,
// which a deployed join never is: it has two input edges.
func (j *joinCore) Process(r *dataflow.Record, _ dataflow.Output) error {
	return j.fail(r, errors.New("join: record without its input (left or right)"))
}

// key normalizes a record's key for the state backend, or reports why it
// cannot.
func (j *joinCore) key(r *dataflow.Record) (any, error) {
	if r.Time == dataflow.NoTime {
		return nil, errors.New("join: record has no event time (set event_time on its source)")
	}
	k, err := state.NormalizeKey(r.Key)
	if err != nil {
		return nil, fmt.Errorf("join: %w (read key_by nodes)", err)
	}
	return k, nil
}

// lateWM is what a record is late against: the join's watermark, or the
// watermark of the record's own source partition when it is ahead, which
// makes lateness the same in every replay (dataflow.Record.SourceWatermark).
func (j *joinCore) lateWM(r *dataflow.Record) int64 {
	if r.SourceWatermark != 0 && r.SourceWatermark > j.wm {
		return r.SourceWatermark
	}
	return j.wm
}

func (j *joinCore) dropLate() {
	if m := j.metrics(); m != nil {
		m.DroppedLate.Add(1)
	}
}

// emit sends the join of l and r (r nil: l with the right fields null) with
// event time ts.
func (j *joinCore) emit(key any, l, r *dataflow.Record, ts int64, out dataflow.Output) error {
	j.names, j.vals = j.names[:0], j.vals[:0]
	for name, v := range l.Fields.All() {
		j.names = append(j.names, j.leftPrefix+name)
		j.vals = append(j.vals, v)
	}
	if r != nil {
		for name, v := range r.Fields.All() {
			if name == j.using {
				continue
			}
			j.names = append(j.names, j.rightPrefix+name)
			j.vals = append(j.vals, v)
		}
	} else {
		for _, name := range j.rightNulls {
			j.names = append(j.names, name)
			j.vals = append(j.vals, nil)
		}
	}
	if j.win != nil {
		j.names = append(j.names, spec.JoinWindowStart, spec.JoinWindowEnd)
		j.vals = append(j.vals, j.win.Start, j.win.End)
	}
	shape, err := j.shapes.Shape(j.names)
	if err != nil {
		// Both sides have the field; the schemas did not tell at submit.
		return j.fail(l, fmt.Errorf("join: %w: set join.left_prefix or join.right_prefix", err))
	}
	j.emitted = dataflow.Record{Key: key, Time: ts, Fields: dataflow.NewFields(shape, append([]any(nil), j.vals...)), Origin: l.Origin}
	err = out.Emit(&j.emitted)
	j.emitted = dataflow.Record{}
	return err
}

// advance fires the timers the watermark passed and forwards the
// watermark, held back by outerHoldMs so that what a left join emits for
// an unmatched record is not late downstream.
func (j *joinCore) advance(wm int64, out dataflow.Output, fire func(state.Timer) error) error {
	if wm > j.wm {
		j.wm = wm
	}
	if err := j.backend.Timers().AdvanceWatermark(j.wm, fire); err != nil {
		return err
	}
	j.publishStateSize()
	fwd := j.wm
	if fwd != dataflow.MaxWatermark && j.outerHoldMs > 0 {
		fwd = satAdd(fwd, -j.outerHoldMs)
	}
	if fwd <= j.forwardedWM {
		return nil
	}
	j.forwardedWM = fwd
	return out.EmitWatermark(fwd)
}

// Snapshot implements dataflow.Snapshotter: the backend's portable format,
// grouped by key group.
func (j *joinCore) Snapshot(int64) ([]byte, error) {
	b, err := j.backend.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("node %s: snapshot: %w", j.node, err)
	}
	j.snapKeys = j.backend.Stats().Entries
	j.publishStateSize()
	return b, nil
}

// SnapshotSummary implements dataflow.SnapshotSummarizer.
func (j *joinCore) SnapshotSummary() dataflow.SnapshotSummary {
	return dataflow.SnapshotSummary{Keys: j.snapKeys}
}

// Restore implements dataflow.Snapshotter: the key groups this subtask
// owns, from the snapshots of one or several subtasks.
func (j *joinCore) Restore(states [][]byte) error {
	if err := j.backend.Restore(states); err != nil {
		return fmt.Errorf("node %s: %w", j.node, err)
	}
	return nil
}

// statsEvery is how many records pass between updates of the state size
// gauge; watermarks update it too.
const joinStatsEvery = 1024

func (j *joinCore) recordDone() {
	if j.sinceStats++; j.sinceStats >= joinStatsEvery {
		j.publishStateSize()
	}
}

func (j *joinCore) publishStateSize() {
	j.sinceStats = 0
	if j.size != nil {
		j.size.Bytes.Store(j.backend.Stats().Bytes)
	}
}

// satAdd is a+b clamped to the int64 range: event times near the ends
// of the range do not wrap.
func satAdd(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// joinEntry is a buffered record of one side: its event time and fields
// (the key is the state's), its origin for error messages, and whether a
// record of the other side matched it (for a left join's unmatched rows).
type joinEntry struct {
	rec     dataflow.Record
	matched bool
}

// joinEntriesSer encodes a list of entries: version 1, the count, then per
// entry a flags byte (1: matched) and the record as the data plane encodes
// it (dataflow.AppendElement), length-prefixed.
type joinEntriesSer struct{}

const joinEntriesVersion = 1

func (joinEntriesSer) Append(buf []byte, es []joinEntry) ([]byte, error) {
	buf = append(buf, joinEntriesVersion)
	buf = binary.AppendUvarint(buf, uint64(len(es)))
	var el dataflow.Element
	var tmp []byte
	for i := range es {
		var flags byte
		if es[i].matched {
			flags |= 1
		}
		el = dataflow.Element{Kind: dataflow.KindRecord, Record: dataflow.Record{Time: es[i].rec.Time, Fields: es[i].rec.Fields, Origin: es[i].rec.Origin}}
		var err error
		if tmp, err = dataflow.AppendElement(tmp[:0], &el); err != nil {
			return buf, err
		}
		buf = append(buf, flags)
		buf = binary.AppendUvarint(buf, uint64(len(tmp)))
		buf = append(buf, tmp...)
	}
	return buf, nil
}

func (joinEntriesSer) Decode(b []byte) ([]joinEntry, error) {
	if len(b) == 0 || b[0] != joinEntriesVersion {
		return nil, fmt.Errorf("join state: unknown encoding version (want %d)", joinEntriesVersion)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errors.New("join state: bad entry count")
	}
	b = b[k:]
	es := make([]joinEntry, 0, n)
	for range n {
		if len(b) < 1 {
			return nil, errors.New("join state: truncated entry")
		}
		flags := b[0]
		if flags&^1 != 0 {
			return nil, fmt.Errorf("join state: unknown entry flags 0x%02x", flags)
		}
		size, k := binary.Uvarint(b[1:])
		if k <= 0 || size > uint64(len(b)-1-k) {
			return nil, errors.New("join state: truncated record")
		}
		rec := b[1+k : 1+k+int(size)]
		b = b[1+k+int(size):]
		els, err := dataflow.AppendDecoded(nil, rec)
		if err != nil {
			return nil, fmt.Errorf("join state: %w", err)
		}
		if len(els) != 1 || els[0].Kind != dataflow.KindRecord {
			return nil, errors.New("join state: entry is not one record")
		}
		es = append(es, joinEntry{rec: els[0].Record, matched: flags&1 != 0})
	}
	if len(b) != 0 {
		return nil, errors.New("join state: trailing bytes")
	}
	return es, nil
}
