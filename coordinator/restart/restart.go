// Package restart holds the restart strategies: pure functions of the
// failure history to "restart after this delay" or "give up". The clock and
// the random source come from the caller.
package restart

import (
	"fmt"
	"time"

	"github.com/weir-stream/weir/dataflow/spec"
)

// Failure is one job failure as the strategy sees it.
type Failure struct {
	// Cause is the failure's message (for the give-up reason).
	Cause string
	// RunningSince is when the failed attempt became RUNNING; zero when it
	// never did. A long enough stable run resets the exponential backoff.
	RunningSince time.Time
}

// Strategy decides after each failure whether to restart and after what
// delay. It keeps the history it needs; one Strategy serves one job.
type Strategy interface {
	// Decide is called once per failure, at now.
	Decide(now time.Time, f Failure) (restart bool, delay time.Duration)
	// String describes the strategy and why it gave up, for causes.
	String() string
}

// New returns the strategy the spec asks for (defaults set). rnd returns a
// number in [0, 1) for the exponential jitter; nil means no jitter.
func New(r *spec.Restart, rnd func() float64) Strategy {
	if r == nil {
		r = &spec.Restart{}
		r.Strategy = spec.RestartExponential
	}
	d := func(p *spec.Duration) time.Duration {
		if p == nil {
			return spec.DefaultRestartDelay
		}
		return p.D()
	}
	switch r.Strategy {
	case spec.RestartFixed:
		return &Fixed{Attempts: r.Attempts, Delay: d(r.Delay)}
	case spec.RestartFailureRate:
		return &FailureRate{MaxFailures: r.MaxFailures, Interval: r.Interval.D(), Delay: d(r.Delay)}
	case spec.RestartNone:
		return None{}
	}
	e := &Exponential{Initial: r.Initial.D(), Max: r.Max.D(), Multiplier: r.Multiplier, ResetAfter: r.ResetAfter.D(), Rand: rnd}
	if r.Jitter != nil {
		e.Jitter = *r.Jitter
	}
	if e.Initial <= 0 {
		e.Initial = spec.DefaultRestartInitial
	}
	if e.Max < e.Initial {
		e.Max = max(spec.DefaultRestartMax, e.Initial)
	}
	if e.Multiplier < 1 {
		e.Multiplier = spec.DefaultRestartMultiplier
	}
	if e.ResetAfter <= 0 {
		e.ResetAfter = spec.DefaultRestartResetAfter
	}
	return e
}

// Exponential restarts forever, the delay growing by Multiplier from
// Initial up to Max, spread by ±Jitter. After a run that stayed up
// ResetAfter, the next delay is Initial again.
type Exponential struct {
	Initial, Max time.Duration
	Multiplier   float64
	Jitter       float64
	ResetAfter   time.Duration
	Rand         func() float64

	next time.Duration // the next delay before jitter; 0: Initial
}

// Decide always restarts.
func (e *Exponential) Decide(now time.Time, f Failure) (bool, time.Duration) {
	if e.next == 0 || (!f.RunningSince.IsZero() && now.Sub(f.RunningSince) >= e.ResetAfter) {
		e.next = e.Initial
	}
	base := e.next
	e.next = min(time.Duration(float64(e.next)*e.Multiplier), e.Max)
	if e.Jitter > 0 && e.Rand != nil {
		base = time.Duration(float64(base) * (1 + e.Jitter*(2*e.Rand()-1)))
	}
	return true, max(base, 0)
}

func (e *Exponential) String() string {
	return fmt.Sprintf("exponential (from %s, ×%g, up to %s)", e.Initial, e.Multiplier, e.Max)
}

// Fixed restarts at most Attempts times over the job's life, Delay apart.
type Fixed struct {
	Attempts int
	Delay    time.Duration
	used     int
}

// Decide restarts while attempts remain.
func (s *Fixed) Decide(time.Time, Failure) (bool, time.Duration) {
	if s.used >= s.Attempts {
		return false, 0
	}
	s.used++
	return true, s.Delay
}

func (s *Fixed) String() string {
	return fmt.Sprintf("fixed: %d of %d restart attempts used", s.used, s.Attempts)
}

// FailureRate restarts unless more than MaxFailures failures fell within
// the last Interval.
type FailureRate struct {
	MaxFailures int
	Interval    time.Duration
	Delay       time.Duration
	failures    []time.Time
}

// Decide records the failure and restarts while the rate allows.
func (s *FailureRate) Decide(now time.Time, _ Failure) (bool, time.Duration) {
	keep := s.failures[:0]
	for _, t := range s.failures {
		if now.Sub(t) < s.Interval {
			keep = append(keep, t)
		}
	}
	s.failures = append(keep, now)
	if len(s.failures) > s.MaxFailures {
		return false, 0
	}
	return true, s.Delay
}

func (s *FailureRate) String() string {
	return fmt.Sprintf("failure_rate: more than %d failures within %s", s.MaxFailures, s.Interval)
}

// None never restarts.
type None struct{}

// Decide never restarts.
func (None) Decide(time.Time, Failure) (bool, time.Duration) { return false, 0 }

func (None) String() string { return "none: restarts are disabled" }
