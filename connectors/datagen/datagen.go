// Package datagen is the deterministic data generator source. Profile
// access-log emits the events of accesslog.Generate for the node's seed, so
// a job reading it can be checked with accesslog.Expected; profile sequence
// emits {"id": n, "ts": accesslog.DefaultStart + n}; profile nexmark emits
// the Nexmark benchmark's events (connectors/nexmark), one flat record per
// event with an event_type field, event time in date_time.
//
// Subtask i of p emits the records whose global index n has n % p == i
// (the generator computes any index directly, so no subtask generates what
// it does not emit). Count is over all subtasks (0: unbounded) and so is
// Rate. Each subtask is one logical partition for event time: its watermark
// is (largest event time emitted − max_out_of_orderness − 1), emitted every
// watermark_interval of wall time, after the first record, and whenever
// event time has moved 30 s past the last watermark (so a subtask that runs
// far faster than event time does not leave its watermark minutes behind,
// which would let the access log's late events through). Run returns nil
// when a bounded source has emitted everything; on cancellation it returns
// the context's error, since the stream did not end.
package datagen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/connectors/eventtime"
	"github.com/weir-stream/weir/connectors/nexmark"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Profiles.
const (
	ProfileAccessLog = "access-log"
	ProfileSequence  = "sequence"
	ProfileNexmark   = spec.ProfileNexmark
)

const (
	defaultWatermarkInterval = 200 * time.Millisecond
	defaultIdleTimeout       = 30 * time.Second
	// watermarkEventTimeStep forces a watermark when event time has moved
	// this far (ms) since the last one.
	watermarkEventTimeStep = 30000
	// maxRestoreParallelism bounds the parallelism a snapshot may claim.
	maxRestoreParallelism = 1 << 15
	// tickEvery is how many records pass between looks at the clock and
	// the context.
	tickEvery = 256
)

// Source is a datagen source subtask.
type Source struct {
	node string
	// metrics counts the rate limiter's waits as idle time.
	metrics     *dataflow.Counters
	profile     string
	count       int64 // over all subtasks; 0: unbounded
	rate        float64
	sub, par    int
	gen         *accesslog.Generator
	nex         *nexmarkGen
	timeField   string        // the profile's event time field, which fields returns
	tsField     string        // event time is this field as is
	tsProg      *expr.Program // event time is this expression
	hasTime     bool
	ooo         time.Duration
	idleTimeout time.Duration
	wmInterval  time.Duration
	onError     dataflow.ErrorHandler
	schema      *dataflow.Schema // the node's declared types; nil: none

	// next is the global index of the next record to emit; Snapshot reads it.
	next atomic.Int64
	// skip, after a restore from a different parallelism, is the table of
	// the subtask's classes mod len(skip) (see Snapshot): index n was
	// emitted before iff n < skip[n%len]. nil: every index below next was.
	skip []int64
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewSource builds the datagen source of node for subtask ctx.Subtask.
func NewSource(node *spec.Node, ctx *dataflow.Context) (dataflow.Source, error) {
	if node == nil || node.Source == nil || node.Source.Datagen == nil {
		return nil, errors.New("datagen: node has no datagen source")
	}
	if ctx == nil {
		return nil, fmt.Errorf("datagen %s: no task context", node.Name)
	}
	d := node.Source.Datagen
	s := &Source{
		node:    node.Name,
		metrics: ctx.Metrics,
		profile: d.Profile,
		count:   d.Count,
		rate:    d.Rate,
		sub:     ctx.Subtask,
		par:     max(ctx.Parallelism, 1),
		onError: ctx.OnError,
	}
	if s.profile == "" {
		s.profile = ProfileAccessLog
	}
	switch {
	case s.profile != ProfileAccessLog && s.profile != ProfileSequence && s.profile != ProfileNexmark:
		return nil, fmt.Errorf("datagen %s: unknown profile %q (want %s, %s or %s)", node.Name, d.Profile, ProfileAccessLog, ProfileSequence, ProfileNexmark)
	case d.Nexmark != nil && s.profile != ProfileNexmark:
		return nil, fmt.Errorf("datagen %s: nexmark settings with profile %q", node.Name, s.profile)
	case d.Count < 0:
		return nil, fmt.Errorf("datagen %s: count must be >= 0 (0: unbounded), got %d", node.Name, d.Count)
	case d.Rate < 0:
		return nil, fmt.Errorf("datagen %s: rate must be >= 0 (0: unlimited), got %g", node.Name, d.Rate)
	case s.sub < 0 || s.sub >= s.par:
		return nil, fmt.Errorf("datagen %s: subtask %d of %d", node.Name, s.sub, s.par)
	}
	if s.onError == nil {
		s.onError = dataflow.FailOnError{Node: node.Name}
	}
	sch, err := dataflow.NewSchema(node.Source.Schema)
	if err != nil {
		return nil, fmt.Errorf("datagen %s: %w", node.Name, err)
	}
	s.schema = sch
	s.timeField = "ts"
	switch s.profile {
	case ProfileAccessLog:
		s.gen = accesslog.NewGenerator(accesslog.Config{Seed: d.Seed, Events: d.Count})
	case ProfileNexmark:
		s.nex = &nexmarkGen{g: nexmark.New(nexmarkConfig(d))}
		s.timeField = "date_time"
	}
	if et := node.Source.EventTime; et != nil {
		s.hasTime = true
		s.ooo = et.MaxOutOfOrderness.D()
		s.idleTimeout = defaultIdleTimeout
		if et.IdleTimeout != nil {
			s.idleTimeout = et.IdleTimeout.D()
		}
		s.wmInterval = et.WatermarkInterval.D()
		if s.wmInterval <= 0 {
			s.wmInterval = defaultWatermarkInterval
		}
		if identRE.MatchString(et.Field) {
			s.tsField = et.Field
		} else {
			p, err := expr.Compile(et.Field, node.Source.Schema, expr.Number)
			if err != nil {
				return nil, fmt.Errorf("datagen %s: event_time.field: %w", node.Name, err)
			}
			s.tsProg = p
		}
	}
	s.next.Store(int64(s.sub))
	return s, nil
}

// Open does nothing: the generator needs no resources.
func (s *Source) Open(*dataflow.Context) error { return nil }

// Close does nothing.
func (s *Source) Close() error { return nil }

// values boxed once, so that a record costs its map and its time stamp.
var (
	boxOnce  sync.Once
	ipAny    []any
	urlAny   []any
	smallAny []any // int64(0..10000): status and bytes
)

func boxTables() {
	for _, ip := range accesslog.IPs() {
		ipAny = append(ipAny, ip)
	}
	for _, u := range accesslog.URLs() {
		urlAny = append(urlAny, u)
	}
	smallAny = make([]any, 10001)
	for i := range smallAny {
		smallAny[i] = int64(i)
	}
}

func boxSmall(v int) any {
	if v >= 0 && v < len(smallAny) {
		return smallAny[v]
	}
	return int64(v)
}

// Run emits the subtask's records; see the package doc.
func (s *Source) Run(ctx context.Context, out dataflow.SourceOutput) error {
	boxOnce.Do(boxTables)
	var (
		rec     = dataflow.Record{Time: dataflow.NoTime, Origin: dataflow.Origin{Source: s.node}}
		now     = time.Now()
		tracker *eventtime.Tracker
		nextWM  time.Time
		maxTs   = eventtime.NoWatermark
		lastWM  = eventtime.NoWatermark
		idle    bool
		emitted int64
		lim     = newLimiter(s.rate/float64(s.par), now, s.metrics)
		oooMs   = s.ooo.Milliseconds()
	)
	var lk sync.Locker = noLock{}
	if cl, ok := out.(checkpointLocker); ok {
		lk = cl.CheckpointLock()
	}
	if s.hasTime {
		tracker = eventtime.NewTracker(s.ooo, s.idleTimeout)
		tracker.AddPartition(0, now)
		nextWM = now // the first tick after the first record emits
	}
	// tick looks at the clock: watermarks and idleness.
	tick := func() error {
		now = time.Now()
		if tracker == nil {
			return nil
		}
		if now.Before(nextWM) && (maxTs == eventtime.NoWatermark || lastWM == eventtime.NoWatermark ||
			maxTs-oooMs-1-lastWM < watermarkEventTimeStep) {
			return nil
		}
		nextWM = now.Add(s.wmInterval)
		wm, changed, allIdle := tracker.Advance(now)
		if allIdle != idle {
			idle = allIdle
			if err := out.MarkIdle(idle); err != nil {
				return err
			}
		}
		if changed {
			lastWM = wm
			return out.EmitWatermark(wm)
		}
		return nil
	}

	for n := s.next.Load(); s.count == 0 || n < s.count; n += int64(s.par) {
		if s.skip != nil && n < s.skip[n%int64(len(s.skip))] {
			s.next.Store(n + int64(s.par))
			continue
		}
		if emitted%tickEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if lim != nil {
			if err := lim.take(ctx, tick); err != nil {
				return err
			}
		}
		var ts int64
		rec.Fields, ts = s.fields(n)
		rec.Origin.Offset = n
		if s.schema != nil {
			f, err := s.schema.Check(rec.Fields)
			if err != nil {
				if herr := s.reject(&rec, n, lk, err); herr != nil {
					return herr
				}
				continue
			}
			rec.Fields = f
		}
		if s.hasTime {
			var err error
			if s.tsField != s.timeField {
				ts, err = s.eventTime(rec.Fields)
			}
			if err != nil {
				if herr := s.reject(&rec, n, lk, err); herr != nil {
					return herr
				}
				continue
			}
			rec.Time = ts
			maxTs = max(maxTs, ts)
			if wm := tracker.Observe(0, ts, now); wm != eventtime.NoWatermark {
				rec.SourceWatermark = wm
			}
			if idle {
				idle = false
				if err := out.MarkIdle(false); err != nil {
					return err
				}
			}
		}
		// Advanced before Emit, under the task's checkpoint lock: a
		// snapshot counts this record as emitted exactly when the barrier
		// follows it.
		lk.Lock()
		s.next.Store(n + int64(s.par))
		err := out.Emit(&rec)
		lk.Unlock()
		if err != nil {
			return err
		}
		if emitted%tickEvery == 0 {
			if err := tick(); err != nil {
				return err
			}
		}
		emitted++
	}
	if tracker != nil {
		if wm, changed, _ := tracker.Advance(time.Now()); changed {
			return out.EmitWatermark(wm)
		}
	}
	return nil
}

// reject hands record n to the error policy. It counts as emitted for the
// snapshot, under the checkpoint lock like an emitted record.
func (s *Source) reject(rec *dataflow.Record, n int64, lk sync.Locker, err error) error {
	rec.Time = dataflow.NoTime
	lk.Lock()
	herr := s.onError.Handle(rec, nil, err)
	s.next.Store(n + int64(s.par))
	lk.Unlock()
	return herr
}

// The shapes of the profiles' records, in the order of accesslog.Event's
// JSON.
var (
	accessLogShape = dataflow.MustShape("ip", "ts", "url", "status", "bytes")
	sequenceShape  = dataflow.MustShape("id", "ts")
)

// fields builds record n's value and returns its time field (s.timeField)
// too, which saves a lookup when event time is that field.
func (s *Source) fields(n int64) (dataflow.Fields, int64) {
	if s.nex != nil {
		return s.nex.fields(n)
	}
	if s.gen == nil {
		ts := accesslog.DefaultStart + n
		return dataflow.NewFields(sequenceShape, []any{n, ts}), ts
	}
	r := s.gen.RawAt(n)
	return dataflow.NewFields(accessLogShape, []any{
		ipAny[r.IP], r.Ts, urlAny[r.URL], boxSmall(r.Status), boxSmall(r.Bytes),
	}), r.Ts
}

func (s *Source) eventTime(f dataflow.Fields) (int64, error) {
	var v any
	if s.tsProg != nil {
		var err error
		if v, err = s.tsProg.Eval(f); err != nil {
			return 0, err
		}
	} else {
		v = f.Get(s.tsField)
	}
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		return int64(x), nil
	case nil:
		return 0, fmt.Errorf("event time %q is missing", s.exprText())
	}
	return 0, fmt.Errorf("event time %q is a %T, want epoch milliseconds", s.exprText(), v)
}

func (s *Source) exprText() string {
	if s.tsProg != nil {
		return s.tsProg.Source()
	}
	return s.tsField
}

// limiter is a token bucket for one subtask's share of the rate.
type limiter struct {
	rate   float64 // tokens per second
	tokens float64
	burst  float64
	last   time.Time
	// idle counts the waits as the task's idle time (nil: not counted).
	idle *dataflow.Counters
}

func newLimiter(rate float64, now time.Time, idle *dataflow.Counters) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{rate: rate, burst: max(1, rate/10), last: now, idle: idle}
}

// take waits for one token, calling tick (watermarks, idleness) at least
// every 100ms while it waits.
func (l *limiter) take(ctx context.Context, tick func() error) error {
	for {
		t := time.Now()
		l.tokens = min(l.burst, l.tokens+t.Sub(l.last).Seconds()*l.rate)
		l.last = t
		if l.tokens >= 1 {
			l.tokens--
			return nil
		}
		wait := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		wait = min(max(wait, time.Millisecond), 100*time.Millisecond)
		timer := time.NewTimer(wait)
		waiting := l.idle.IdleStart()
		select {
		case <-ctx.Done():
			timer.Stop()
			l.idle.IdleEnd(waiting)
			return ctx.Err()
		case <-timer.C:
		}
		l.idle.IdleEnd(waiting)
		if err := tick(); err != nil {
			return err
		}
	}
}

// checkpointLocker is implemented by the task's SourceOutput: the lock it
// holds while it snapshots the source and injects a barrier. The source
// holds it from advancing its position to Emit returning.
type checkpointLocker interface{ CheckpointLock() sync.Locker }

type noLock struct{}

func (noLock) Lock()   {}
func (noLock) Unlock() {}

// Snapshot captures the position. Call it from Run's goroutine or under
// the output's checkpoint lock (which Run holds from advancing the position
// to Emit returning); inside Emit(r) it counts r as emitted, so the barrier
// must follow r.
//
// The state says which of the subtask's indexes (n % par == sub) were
// emitted. Usually that is every index below the next one: 24 bytes, the
// parallelism, the subtask and the next index. After a restore from another
// parallelism the subtask may still be skipping indexes the old subtasks
// emitted above its position; until it has passed them the state is a table
// instead (see table), so that a further restore does not emit them again.
func (s *Source) Snapshot(int64) ([]byte, error) {
	next := s.next.Load()
	if s.skip == nil {
		return appendU64s(make([]byte, 0, 24), int64(s.par), int64(s.sub), next), nil
	}
	l := int64(len(s.skip))
	own := make([]int64, 0, l/int64(s.par))
	for c := int64(s.sub); c < l; c += int64(s.par) {
		own = append(own, max(s.skip[c], firstAtLeast(next, c, l)))
	}
	if w, ok := compact(own, int64(s.sub), int64(s.par), l); ok {
		return appendU64s(make([]byte, 0, 24), int64(s.par), int64(s.sub), w), nil
	}
	b := appendU64s(make([]byte, 0, 24+8*len(own)), int64(s.par), int64(s.sub), l)
	return appendU64s(b, own...), nil
}

// A table state is the parallelism p, the subtask i, a modulus l (a
// multiple of p) and, for each class c = i, i+p, i+2p, … below l, the
// lowest index of that class (n % l == c) not yet emitted: index n of the
// subtask was emitted iff n < table[n % l].

// maxModulus bounds a table's modulus: the least common multiple of the
// parallelisms a source was rescaled between while its tables last.
const maxModulus = 1 << 16

func appendU64s(b []byte, vs ...int64) []byte {
	for _, v := range vs {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// firstAtLeast is the smallest n >= t with n % l == c (t, c >= 0).
func firstAtLeast(t, c, l int64) int64 {
	return t + ((c-t)%l+l)%l
}

// compact reports whether the thresholds of classes sub, sub+par, … mod l
// say no more than "every index of the subtask below w", and w.
func compact(own []int64, sub, par, l int64) (int64, bool) {
	w := own[0]
	for _, v := range own[1:] {
		w = min(w, v)
	}
	for k, v := range own {
		if v != firstAtLeast(w, sub+int64(k)*par, l) {
			return w, false
		}
	}
	return w, true
}

// oldState is one decoded subtask state: its modulus and the thresholds of
// its classes.
type oldState struct {
	mod int64
	own []int64
}

// Restore resumes from snapshots. With the same parallelism it takes its
// own subtask's state; with a different one it needs the states of every
// old subtask and skips exactly what they had emitted.
func (s *Source) Restore(states [][]byte) error {
	oldPar := int64(-1)
	var olds []*oldState
	for _, st := range states {
		if len(st) < 24 || len(st)%8 != 0 {
			return fmt.Errorf("datagen %s: restore: state of %d bytes, want 24 or more in words of 8", s.node, len(st))
		}
		p := int64(binary.BigEndian.Uint64(st))
		sub := int64(binary.BigEndian.Uint64(st[8:]))
		if p <= 0 || p > maxRestoreParallelism || sub < 0 || sub >= p || (oldPar >= 0 && p != oldPar) {
			return fmt.Errorf("datagen %s: restore: inconsistent state (subtask %d of %d)", s.node, sub, p)
		}
		o := &oldState{mod: p}
		if len(st) == 24 {
			o.own = []int64{int64(binary.BigEndian.Uint64(st[16:]))}
		} else {
			o.mod = int64(binary.BigEndian.Uint64(st[16:]))
			if o.mod <= p || o.mod > maxModulus || o.mod%p != 0 || int64(len(st)) != 24+8*(o.mod/p) {
				return fmt.Errorf("datagen %s: restore: inconsistent state (subtask %d of %d, modulus %d, %d bytes)", s.node, sub, p, o.mod, len(st))
			}
			for b := st[24:]; len(b) > 0; b = b[8:] {
				o.own = append(o.own, int64(binary.BigEndian.Uint64(b)))
			}
		}
		for k, v := range o.own {
			if c := sub + int64(k)*p; v < c || (v-c)%o.mod != 0 {
				return fmt.Errorf("datagen %s: restore: inconsistent state (subtask %d of %d: position %d)", s.node, sub, p, v)
			}
		}
		if oldPar < 0 {
			oldPar = p
			olds = make([]*oldState, p)
		}
		if olds[sub] != nil {
			return fmt.Errorf("datagen %s: restore: two states of subtask %d of %d", s.node, sub, p)
		}
		olds[sub] = o
	}
	if oldPar < 0 {
		return nil
	}
	par, sub := int64(s.par), int64(s.sub)
	if oldPar == par && olds[sub] != nil {
		s.adopt(olds[sub].mod, olds[sub].own)
		return nil
	}
	l := par
	for i, o := range olds {
		if o == nil {
			return fmt.Errorf("datagen %s: restore from parallelism %d to %d needs the state of every old subtask; subtask %d is missing", s.node, oldPar, s.par, i)
		}
		l = lcm(l, o.mod)
		if l > maxModulus {
			return fmt.Errorf("datagen %s: restore from parallelism %d to %d: the position table would need %d entries (at most %d); restore at parallelism %d first and take a checkpoint", s.node, oldPar, s.par, l, maxModulus, oldPar)
		}
	}
	own := make([]int64, 0, l/par)
	for c := sub; c < l; c += par {
		o := olds[c%oldPar]
		// Class c mod l lies in class c mod o.mod, whose threshold is
		// at index (c mod o.mod − subtask) / oldPar of the old table.
		t := o.own[(c%o.mod-c%oldPar)/oldPar]
		own = append(own, firstAtLeast(t, c, l))
	}
	s.adopt(l, own)
	return nil
}

// adopt takes the thresholds own of the subtask's classes mod l.
func (s *Source) adopt(l int64, own []int64) {
	par, sub := int64(s.par), int64(s.sub)
	w, ok := compact(own, sub, par, l)
	s.next.Store(w)
	if ok {
		s.skip = nil
		return
	}
	s.skip = make([]int64, l)
	for k, v := range own {
		s.skip[sub+int64(k)*par] = v
	}
}

func lcm(a, b int64) int64 {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

var (
	_ dataflow.Source      = (*Source)(nil)
	_ dataflow.Snapshotter = (*Source)(nil)
)
