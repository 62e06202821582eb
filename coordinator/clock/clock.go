// Package clock is the coordinator's source of time: the real clock in
// production and a manual one in tests, so heartbeat and scheduling timeouts
// fire by hand.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and makes tickers.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks on C until stopped.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// NewTicker returns a time.Ticker.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Manual is a clock that moves only when Advance is called. Tickers fire
// (at most one pending tick each, like time.Ticker) when Advance passes
// their next deadline.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*manualTicker
}

// NewManual returns a manual clock set to start.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

// Now returns the manual time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// NewTicker returns a ticker driven by Advance.
func (m *Manual) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		d = time.Nanosecond
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTicker{m: m, every: d, next: m.now.Add(d), c: make(chan time.Time, 1)}
	m.tickers = append(m.tickers, t)
	return t
}

// Advance moves the clock forward by d and fires every ticker whose
// deadline has passed.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	for _, t := range m.tickers {
		if t.stopped || t.next.After(m.now) {
			continue
		}
		for !t.next.After(m.now) {
			t.next = t.next.Add(t.every)
		}
		select {
		case t.c <- m.now:
		default:
		}
	}
}

type manualTicker struct {
	m       *Manual
	every   time.Duration
	next    time.Time
	stopped bool
	c       chan time.Time
}

func (t *manualTicker) C() <-chan time.Time { return t.c }

func (t *manualTicker) Stop() {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	t.stopped = true
}
