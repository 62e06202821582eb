package spec

import (
	"fmt"
	"strings"
	"time"
)

// Checkpoint configures periodic checkpoints. The block's presence enables
// them; without it the job takes none (savepoints still work).
type Checkpoint struct {
	// Interval between two triggers (default 10s), measured from the
	// previous trigger; MinPause is measured from the previous checkpoint's
	// end.
	Interval Duration `yaml:"interval,omitempty"`
	// Mode is exactly_once (default: barriers are aligned) or at_least_once.
	Mode string `yaml:"mode,omitempty"`
	// Timeout aborts a checkpoint not complete after this long (default 10m).
	Timeout Duration `yaml:"timeout,omitempty"`
	// MinPause is the least time between one checkpoint's end and the next
	// trigger (default 0).
	MinPause Duration `yaml:"min_pause,omitempty"`
	// TolerableFailures is how many consecutive checkpoint failures the job
	// survives; one more fails it (default 0).
	TolerableFailures int `yaml:"tolerable_failures,omitempty"`
	// Retained is how many completed checkpoints are kept (default 3).
	Retained int `yaml:"retained,omitempty"`
	// Storage is the checkpoint root URI (file:///..., hdfs://..., s3://...); default
	// the coordinator's --checkpoint-storage.
	Storage string `yaml:"storage,omitempty"`
}

// Checkpoint modes.
const (
	ModeExactlyOnce = "exactly_once"
	ModeAtLeastOnce = "at_least_once"
)

// Restart is the restart strategy after a failure.
type Restart struct {
	// Strategy is exponential (default), fixed, failure_rate or none.
	Strategy string `yaml:"strategy,omitempty"`

	// exponential: the first delay, its bound, the growth factor, the
	// random spread (0.1: ±10%) and the stable running time after which
	// the delay starts over from Initial.
	Initial    Duration `yaml:"initial,omitempty"`
	Max        Duration `yaml:"max,omitempty"`
	Multiplier float64  `yaml:"multiplier,omitempty"`
	Jitter     *float64 `yaml:"jitter,omitempty"`
	ResetAfter Duration `yaml:"reset_after,omitempty"`

	// fixed: at most Attempts restarts, Delay apart.
	Attempts int `yaml:"attempts,omitempty"`
	// Delay before each restart (fixed and failure_rate).
	Delay *Duration `yaml:"delay,omitempty"`

	// failure_rate: restart unless more than MaxFailures failures happened
	// within Interval.
	MaxFailures int      `yaml:"max_failures,omitempty"`
	Interval    Duration `yaml:"interval,omitempty"`
}

// Restart strategies.
const (
	RestartExponential = "exponential"
	RestartFixed       = "fixed"
	RestartFailureRate = "failure_rate"
	RestartNone        = "none"
)

// Checkpoint and restart defaults; docs/spec.md lists them.
const (
	DefaultCheckpointInterval = 10 * time.Second
	DefaultCheckpointTimeout  = 10 * time.Minute
	DefaultRetained           = 3
	DefaultRestartInitial     = time.Second
	DefaultRestartMax         = 30 * time.Second
	DefaultRestartMultiplier  = 2.0
	DefaultRestartJitter      = 0.1
	DefaultRestartResetAfter  = time.Minute
	DefaultRestartAttempts    = 3
	DefaultRestartDelay       = time.Second
	DefaultMaxFailures        = 3
	DefaultFailureInterval    = 5 * time.Minute
	// MinCheckpointInterval bounds how often checkpoints can be taken.
	MinCheckpointInterval = 10 * time.Millisecond
	// MaxRetained bounds the retained checkpoints.
	MaxRetained = 100
)

func (c *Checkpoint) setDefaults() {
	if c.Interval == 0 {
		c.Interval = Duration(DefaultCheckpointInterval)
	}
	def(&c.Mode, ModeExactlyOnce)
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultCheckpointTimeout)
	}
	if c.Retained == 0 {
		c.Retained = DefaultRetained
	}
}

// setDefaults fills the fields of the chosen strategy only, so that a field
// of another strategy stays visible to validation as a mistake.
func (r *Restart) setDefaults() {
	def(&r.Strategy, RestartExponential)
	delay := func() {
		if r.Delay == nil {
			d := Duration(DefaultRestartDelay)
			r.Delay = &d
		}
	}
	switch r.Strategy {
	case RestartExponential:
		if r.Initial == 0 {
			r.Initial = Duration(DefaultRestartInitial)
		}
		if r.Max == 0 {
			r.Max = Duration(max(DefaultRestartMax, r.Initial.D()))
		}
		if r.Multiplier == 0 {
			r.Multiplier = DefaultRestartMultiplier
		}
		if r.Jitter == nil {
			j := DefaultRestartJitter
			r.Jitter = &j
		}
		if r.ResetAfter == 0 {
			r.ResetAfter = Duration(DefaultRestartResetAfter)
		}
	case RestartFixed:
		if r.Attempts == 0 {
			r.Attempts = DefaultRestartAttempts
		}
		delay()
	case RestartFailureRate:
		if r.MaxFailures == 0 {
			r.MaxFailures = DefaultMaxFailures
		}
		if r.Interval == 0 {
			r.Interval = Duration(DefaultFailureInterval)
		}
		delay()
	}
}

func (v *validator) checkpoint(p string, c *Checkpoint) {
	if c == nil {
		return
	}
	if c.Interval.D() < MinCheckpointInterval {
		v.errorf(p+".interval", "must be at least %s, got %s", MinCheckpointInterval, c.Interval.D())
	}
	v.check(oneOf(p+".mode", c.Mode, ModeExactlyOnce, ModeAtLeastOnce))
	if c.Timeout <= 0 {
		v.errorf(p+".timeout", "must be positive, got %s", c.Timeout.D())
	}
	if c.MinPause < 0 {
		v.errorf(p+".min_pause", "must not be negative, got %s", c.MinPause.D())
	}
	if c.TolerableFailures < 0 {
		v.errorf(p+".tolerable_failures", "must not be negative, got %d", c.TolerableFailures)
	}
	if c.Retained < 1 || c.Retained > MaxRetained {
		v.errorf(p+".retained", "must be between 1 and %d, got %d", MaxRetained, c.Retained)
	}
	if s := c.Storage; s != "" && !strings.HasPrefix(s, "file://") && !strings.HasPrefix(s, "hdfs://") && !strings.HasPrefix(s, "s3://") {
		v.errorf(p+".storage", "want a file://, hdfs:// or s3:// URI, got %q", s)
	}
}

func (v *validator) restart(p string, r *Restart) {
	if r == nil {
		return
	}
	if e := oneOf(p+".strategy", r.Strategy, RestartExponential, RestartFixed, RestartFailureRate, RestartNone); e != nil {
		v.check(e)
		return
	}
	only := func(field string, set bool, strategies ...string) {
		if set {
			v.errorf(p+"."+field, "only for strategy %s, not %s", orList(strategies), r.Strategy)
		}
	}
	exp, fixed, rate := r.Strategy == RestartExponential, r.Strategy == RestartFixed, r.Strategy == RestartFailureRate
	if !exp {
		only("initial", r.Initial != 0, RestartExponential)
		only("max", r.Max != 0, RestartExponential)
		only("multiplier", r.Multiplier != 0, RestartExponential)
		only("jitter", r.Jitter != nil, RestartExponential)
		only("reset_after", r.ResetAfter != 0, RestartExponential)
	}
	if !fixed {
		only("attempts", r.Attempts != 0, RestartFixed)
	}
	if !fixed && !rate {
		only("delay", r.Delay != nil, RestartFixed, RestartFailureRate)
	}
	if !rate {
		only("max_failures", r.MaxFailures != 0, RestartFailureRate)
		only("interval", r.Interval != 0, RestartFailureRate)
	}
	switch {
	case exp:
		if r.Initial <= 0 {
			v.errorf(p+".initial", "must be positive, got %s", r.Initial.D())
		}
		if r.Max < r.Initial {
			v.errorf(p+".max", "must be at least initial (%s), got %s", r.Initial.D(), r.Max.D())
		}
		if r.Multiplier < 1 {
			v.errorf(p+".multiplier", "must be at least 1, got %g", r.Multiplier)
		}
		if r.Jitter != nil && (*r.Jitter < 0 || *r.Jitter > 1) {
			v.errorf(p+".jitter", "must be between 0 and 1, got %g", *r.Jitter)
		}
		if r.ResetAfter <= 0 {
			v.errorf(p+".reset_after", "must be positive, got %s", r.ResetAfter.D())
		}
	case fixed:
		if r.Attempts < 1 {
			v.errorf(p+".attempts", "must be at least 1 (use strategy none for no restart), got %d", r.Attempts)
		}
	case rate:
		if r.MaxFailures < 1 {
			v.errorf(p+".max_failures", "must be at least 1, got %d", r.MaxFailures)
		}
		if r.Interval <= 0 {
			v.errorf(p+".interval", "must be positive, got %s", r.Interval.D())
		}
	}
	if (fixed || rate) && r.Delay != nil && r.Delay.D() < 0 {
		v.errorf(p+".delay", "must not be negative, got %s", r.Delay.D())
	}
}

// String describes the strategy for messages, e.g. "fixed (3 attempts, 1s
// apart)".
func (r *Restart) String() string {
	switch r.Strategy {
	case RestartExponential:
		return fmt.Sprintf("exponential (from %s, ×%g, up to %s)", r.Initial.D(), r.Multiplier, r.Max.D())
	case RestartFixed:
		return fmt.Sprintf("fixed (%d attempts)", r.Attempts)
	case RestartFailureRate:
		return fmt.Sprintf("failure_rate (at most %d failures per %s)", r.MaxFailures, r.Interval.D())
	}
	return r.Strategy
}
