package sdkexamples

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/weir-stream/weir/sdk"
)

// SessionConfig configures example.session.
type SessionConfig struct {
	// Gap is the inactivity that closes a session, as a Go duration
	// ("30m", the default).
	Gap string `json:"gap"`
}

// Validate implements sdk.Validator.
func (c SessionConfig) Validate() error {
	if c.Gap == "" {
		return nil
	}
	d, err := time.ParseDuration(c.Gap)
	if err != nil {
		return sdk.ConfigError("gap", "want a duration such as 30m, got %q", c.Gap)
	}
	if d < time.Millisecond {
		return sdk.ConfigError("gap", "must be at least 1ms, got %s", d)
	}
	return nil
}

// Activity is example.session's input. The key (key_by) says whose
// activity it is and the event time (the source's event_time) when; Value
// is summed per session.
type Activity struct {
	Value int64 `weir:"value"`
}

// Session is one closed session of a key: its events lie in [Start,
// End - gap], no two of them further apart than the gap, and no event of
// the key lies within the gap before Start or after the last one.
type Session struct {
	Key    any   `weir:"key"`
	Start  int64 `weir:"start"`  // the first event's time (epoch ms)
	End    int64 `weir:"end"`    // the last event's time + the gap: when the session closed
	Events int64 `weir:"events"` // how many events it had
	Total  int64 `weir:"total"`  // the sum of their values
}

// openSession is a session still open, in state under its start. The
// json tags fix its names in savepoints (docs/sdk.md, "State evolution").
type openSession struct {
	Last   int64 `json:"last"`
	Events int64 `json:"events"`
	Total  int64 `json:"total"`
}

// Sessionizer groups each key's events into sessions, as the gap between
// them allows, by event time: an event opens a session [t, t+gap), and
// sessions that overlap merge, so events arriving out of order (within
// the watermark's bound) join, bridge and merge the right sessions. A
// session closes, and is emitted, when the watermark passes its end - 1
// (an event-time timer per session); a later event starts a new one.
//
// An event that merges with no open session and whose own session would
// have closed already (t + gap - 1 <= the watermark) is late: it is
// dropped and counted (weir_user_session_late_events_total), as a window
// drops a late record.
type Sessionizer struct {
	gap  int64
	open *sdk.Map[int64, openSession] // the key's open sessions by start
	late *sdk.Counter
}

// NewSessionizer is example.session's factory.
func NewSessionizer(cfg SessionConfig) (sdk.ProcessFunction[Activity, Session], error) {
	gap := 30 * time.Minute
	if cfg.Gap != "" {
		gap, _ = time.ParseDuration(cfg.Gap) // checked by Validate
	}
	return &Sessionizer{gap: gap.Milliseconds()}, nil
}

// Open declares the open sessions and the late-event counter.
func (s *Sessionizer) Open(ctx *sdk.OpenContext) (err error) {
	s.open, err = sdk.NewMap(ctx, sdk.MapDescriptor[int64, openSession]{Name: "sessions"})
	s.late = ctx.Metrics().Counter("session_late_events_total", "Events dropped because their session had closed.")
	return err
}

var errNoEventTime = errors.New("example.session: the record has no event time (give the source an event_time)")

// ProcessElement adds the event to the session it falls in, merging the
// sessions it bridges.
func (s *Sessionizer) ProcessElement(ctx *sdk.Context, in Activity, _ *sdk.Collector[Session]) error {
	ts := ctx.Timestamp()
	if ts == sdk.NoTimestamp {
		return errNoEventTime
	}
	if ts > math.MaxInt64-s.gap {
		return fmt.Errorf("example.session: event time %d is beyond the last session end weir can represent", ts)
	}
	start, merged := ts, openSession{Last: ts, Events: 1, Total: in.Value}
	var joined []int64
	err := s.open.Range(func(st int64, o openSession) bool {
		// [st, o.Last+gap) and [ts, ts+gap) overlap.
		if st < ts+s.gap && ts < o.Last+s.gap {
			joined = append(joined, st)
			start = min(start, st)
			merged.Last = max(merged.Last, o.Last)
			merged.Events += o.Events
			merged.Total += o.Total
		}
		return true
	})
	if err != nil {
		return err
	}
	if len(joined) == 0 && ts+s.gap-1 <= ctx.Watermark() {
		s.late.Inc()
		return nil
	}
	for _, st := range joined {
		o, _, err := s.open.Get(st)
		if err != nil {
			return err
		}
		ctx.Timers().DeleteEventTimeTimer(o.Last + s.gap - 1)
		if err := s.open.Remove(st); err != nil {
			return err
		}
	}
	ctx.Timers().RegisterEventTimeTimer(merged.Last + s.gap - 1)
	return s.open.Put(start, merged)
}

// OnTimer emits the session that closed and forgets it.
func (s *Sessionizer) OnTimer(ctx *sdk.Context, t sdk.Timer, out *sdk.Collector[Session]) error {
	var (
		start  int64
		closed openSession
		found  bool
	)
	err := s.open.Range(func(st int64, o openSession) bool {
		if o.Last+s.gap-1 == t.Time {
			start, closed, found = st, o, true
			return false
		}
		return true
	})
	if err != nil || !found {
		return err
	}
	if err := s.open.Remove(start); err != nil {
		return err
	}
	return out.Emit(Session{Key: ctx.Key(), Start: start, End: closed.Last + s.gap, Events: closed.Events, Total: closed.Total})
}

func init() { sdk.RegisterProcess("example.session", NewSessionizer) }
