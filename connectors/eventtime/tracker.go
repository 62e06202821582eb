// Package eventtime generates watermarks at a source: bounded
// out-of-orderness per partition, combined over the partitions a subtask
// reads, with idle partitions not holding the combined watermark back.
package eventtime

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Millis converts the value of a source's event_time expression to epoch
// milliseconds: an integer, an integral-range float or a time; null and
// anything else are errors that say what was found.
func Millis(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x > math.MaxInt64 || x < math.MinInt64 {
			return 0, fmt.Errorf("event time %v is not a valid epoch millisecond value", x)
		}
		return int64(x), nil
	case time.Time:
		return x.UnixMilli(), nil
	case nil:
		return 0, errors.New("event time is missing (null)")
	}
	return 0, fmt.Errorf("event time must be a number of epoch milliseconds, got %T %v", v, v)
}

// NoWatermark is the watermark before any record was seen.
const NoWatermark int64 = math.MinInt64

// Tracker follows the partitions of one source subtask. It is pure: time is
// passed in, so tests drive it by hand. Not safe for concurrent use.
type Tracker struct {
	bound       int64 // max out-of-orderness, ms
	idleTimeout time.Duration
	parts       map[int32]*partition
	emitted     int64
}

type partition struct {
	maxTs    int64
	lastSeen time.Time
	idle     bool
}

// NewTracker returns a tracker; idleTimeout 0 disables idleness.
func NewTracker(maxOutOfOrderness, idleTimeout time.Duration) *Tracker {
	return &Tracker{
		bound:       maxOutOfOrderness.Milliseconds(),
		idleTimeout: idleTimeout,
		parts:       map[int32]*partition{},
		emitted:     NoWatermark,
	}
}

// AddPartition registers a partition; it holds the watermark back until it
// produces a record or turns idle.
func (t *Tracker) AddPartition(p int32, now time.Time) {
	if _, ok := t.parts[p]; !ok {
		t.parts[p] = &partition{maxTs: NoWatermark, lastSeen: now}
	}
}

// Observe records an event time seen on partition p and returns the
// partition's own watermark after it (see PartitionWatermark), which a
// source puts on the record (dataflow.Record.SourceWatermark).
func (t *Tracker) Observe(p int32, ts int64, now time.Time) int64 {
	s, ok := t.parts[p]
	if !ok {
		s = &partition{maxTs: NoWatermark}
		t.parts[p] = s
	}
	if ts > s.maxTs {
		s.maxTs = ts
	}
	s.lastSeen = now
	s.idle = false
	return t.watermarkOf(s)
}

// Restore sets a partition's largest seen event time, from a checkpoint.
func (t *Tracker) Restore(p int32, maxTs int64, now time.Time) {
	t.AddPartition(p, now)
	t.parts[p].maxTs = maxTs
}

// MaxTimestamp returns the largest event time seen on p.
func (t *Tracker) MaxTimestamp(p int32) int64 {
	if s, ok := t.parts[p]; ok {
		return s.maxTs
	}
	return NoWatermark
}

// PartitionWatermark is partition p's own watermark: its largest event
// time less the out-of-orderness and 1 ms, NoWatermark before any record.
func (t *Tracker) PartitionWatermark(p int32) int64 {
	s, ok := t.parts[p]
	if !ok {
		return NoWatermark
	}
	return t.watermarkOf(s)
}

func (t *Tracker) watermarkOf(s *partition) int64 {
	if s.maxTs == NoWatermark {
		return NoWatermark
	}
	return s.maxTs - t.bound - 1
}

// Advance marks partitions idle whose last record is older than the idle
// timeout and returns the combined watermark, whether it moved forward since
// the last call that reported a change, and whether every partition is idle
// (the caller then marks the subtask idle). The watermark never goes back.
func (t *Tracker) Advance(now time.Time) (wm int64, changed, allIdle bool) {
	combined := int64(math.MaxInt64)
	active := 0
	for _, s := range t.parts {
		if !s.idle && t.idleTimeout > 0 && now.Sub(s.lastSeen) >= t.idleTimeout {
			s.idle = true
		}
		if s.idle {
			continue
		}
		active++
		w := NoWatermark
		if s.maxTs != NoWatermark {
			w = s.maxTs - t.bound - 1
		}
		if w < combined {
			combined = w
		}
	}
	if active == 0 {
		return t.emitted, false, true
	}
	if combined > t.emitted {
		t.emitted = combined
		return combined, true, false
	}
	return t.emitted, false, false
}
