package dataflow

import (
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

	// blockedSince is the start (unix ns) of the wait in progress, 0 when
	// none: a sink stuck on a broker that does not answer must show as
	// backpressured while it is stuck, not only once the wait ends.
	blockedSince atomic.Int64

	mu     sync.Mutex
	links  []*Link
	states []*StateSize

	// User holds the metrics user operators define (usermetrics.go).
	User UserMetrics
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
