package dataflow

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Counters are a task's running figures, read by heartbeats and /metrics
// from other goroutines.
type Counters struct {
	RecordsIn  atomic.Int64
	RecordsOut atomic.Int64
	// BackpressuredNs is time already spent waiting; Backpressured adds
	// the wait in progress (BlockStart … BlockEnd).
	BackpressuredNs atomic.Int64
	DroppedLate     atomic.Int64
	SkippedInvalid  atomic.Int64
	DeadLettered    atomic.Int64
	// User holds the metrics user operators define (usermetrics.go).
	User UserMetrics

	// IdleNs is time already spent waiting for input; Idle adds the wait
	// in progress (IdleStart … IdleEnd).
	IdleNs atomic.Int64

	// startedAt is when the task began (unix ns, 0: not yet): busy time is
	// the time since minus idle and backpressured time.
	startedAt, endedAt atomic.Int64
	// idleSince is the start (unix ns) of the input wait in progress.
	idleSince atomic.Int64
	// watermark is the task's current event-time watermark (ms) once
	// hasWatermark is set.
	watermark    atomic.Int64
	hasWatermark atomic.Bool

	// blockedSince is the start (unix ns) of the wait in progress, 0 when
	// none: a sink stuck on a broker that does not answer must show as
	// backpressured while it is stuck, not only once the wait ends.
	blockedSince atomic.Int64

	mu     sync.Mutex
	links  []*Link
	states []*StateSize
}

// BlockStart marks the start of a wait on something downstream (output
// credit, a broker, a full producer buffer). It returns false when a wait
// is already in progress (it is counted once); pass the result to
// BlockEnd.
func (c *Counters) BlockStart() bool {
	return c.blockedSince.CompareAndSwap(0, time.Now().UnixNano())
}

// BlockEnd ends the wait BlockStart began (when it returned true) and adds
// it to BackpressuredNs.
func (c *Counters) BlockEnd(started bool) {
	if !started {
		return
	}
	if s := c.blockedSince.Swap(0); s != 0 {
		c.BackpressuredNs.Add(max(time.Now().UnixNano()-s, 0))
	}
}

// Backpressured is the total time waited, including a wait in progress.
func (c *Counters) Backpressured() time.Duration {
	d := c.BackpressuredNs.Load()
	if s := c.blockedSince.Load(); s != 0 {
		d += max(time.Now().UnixNano()-s, 0)
	}
	return time.Duration(d)
}

// Start marks the task's start: busy time counts from here. Only the
// first call counts.
func (c *Counters) Start() { c.startedAt.CompareAndSwap(0, time.Now().UnixNano()) }

// Stop marks the task's end: busy time stops growing. Only the first call
// counts.
func (c *Counters) Stop() { c.endedAt.CompareAndSwap(0, time.Now().UnixNano()) }

// IdleStart marks the start of a wait for input: a gate with nothing to
// read, a source waiting for its outside system. It returns false when a
// wait is already in progress or c is nil; pass the result to IdleEnd.
func (c *Counters) IdleStart() bool {
	return c != nil && c.idleSince.CompareAndSwap(0, time.Now().UnixNano())
}

// IdleEnd ends the wait IdleStart began (when it returned true) and adds it
// to IdleNs.
func (c *Counters) IdleEnd(started bool) {
	if !started {
		return
	}
	if s := c.idleSince.Swap(0); s != 0 {
		c.IdleNs.Add(max(time.Now().UnixNano()-s, 0))
	}
}

// Idle is the total time waited for input, including a wait in progress.
func (c *Counters) Idle() time.Duration {
	d := c.IdleNs.Load()
	if s := c.idleSince.Load(); s != 0 {
		d += max(time.Now().UnixNano()-s, 0)
	}
	return time.Duration(d)
}

// Busy is the time the task has spent processing from Start to Stop: neither
// waiting for input (Idle) nor for output credit or a broker
// (Backpressured). 0 before Start.
func (c *Counters) Busy() time.Duration {
	s := c.startedAt.Load()
	if s == 0 {
		return 0
	}
	end := c.endedAt.Load()
	if end == 0 {
		end = time.Now().UnixNano()
	}
	return max(time.Duration(end-s)-c.Idle()-c.Backpressured(), 0)
}

// SetWatermark records the task's current event-time watermark (ms).
// The no-watermark-yet and end-of-input sentinels are not watermarks.
func (c *Counters) SetWatermark(wm int64) {
	if wm == math.MinInt64 || wm >= MaxWatermark {
		return
	}
	c.watermark.Store(wm)
	c.hasWatermark.Store(true)
}

// Watermark is the task's current watermark, if it has one yet.
func (c *Counters) Watermark() (int64, bool) {
	if !c.hasWatermark.Load() {
		return 0, false
	}
	return c.watermark.Load(), true
}

// Link returns a new connectivity record for a source or sink named node
// (one per connection an operator holds); the task reports every link it
// has. Call it in Open, not per record.
func (c *Counters) Link(node, target string) *Link {
	l := &Link{Node: node, Target: target}
	c.mu.Lock()
	c.links = append(c.links, l)
	c.mu.Unlock()
	return l
}

// Links is a copy of the task's links as they are now.
func (c *Counters) Links() []LinkStatus {
	c.mu.Lock()
	ls := append([]*Link(nil), c.links...)
	c.mu.Unlock()
	out := make([]LinkStatus, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Status())
	}
	return out
}

// StateSize returns a new keyed-state size gauge for the operator named
// node. Call it in Open; the operator keeps it up to date cheaply.
func (c *Counters) StateSize(node string) *StateSize {
	s := &StateSize{Node: node}
	c.mu.Lock()
	c.states = append(c.states, s)
	c.mu.Unlock()
	return s
}

// StateSizes is each stateful operator's estimated state size now.
func (c *Counters) StateSizes() []OperatorStateSize {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]OperatorStateSize, 0, len(c.states))
	for _, s := range c.states {
		out = append(out, OperatorStateSize{Node: s.Node, Bytes: s.Bytes.Load()})
	}
	return out
}

// StateSize is an operator's estimated keyed-state size in bytes.
type StateSize struct {
	Node  string
	Bytes atomic.Int64
}

// OperatorStateSize is one reading of a StateSize.
type OperatorStateSize struct {
	Node  string
	Bytes int64
}

// Link is the connectivity of a source or sink to an outside system
// (brokers), safe for concurrent use.
type Link struct {
	Node, Target string

	mu     sync.Mutex
	known  bool
	up     bool
	since  time.Time
	lastEr string
}

// LinkStatus is one reading of a Link. Known is false until the first
// report; Since is when it became unreachable.
type LinkStatus struct {
	Node      string
	Target    string
	Known     bool
	Connected bool
	Since     time.Time
	LastError string
}

// Connected records that the outside system answered.
func (l *Link) Connected() {
	l.mu.Lock()
	l.known, l.up, l.since, l.lastEr = true, true, time.Time{}, ""
	l.mu.Unlock()
}

// Unreachable records a failed attempt at now; Since stays at the first
// failure of an unbroken streak.
func (l *Link) Unreachable(now time.Time, err error) {
	l.mu.Lock()
	if !l.known || l.up {
		l.since = now
	}
	l.known, l.up = true, false
	if err != nil {
		l.lastEr = err.Error()
	}
	l.mu.Unlock()
}

// Status reads the link.
func (l *Link) Status() LinkStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LinkStatus{Node: l.Node, Target: l.Target, Known: l.known, Connected: l.up, Since: l.since, LastError: l.lastEr}
}
