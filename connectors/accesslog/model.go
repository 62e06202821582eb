package accesslog

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// NoWatermark is the final watermark of a log without events.
const NoWatermark int64 = math.MinInt64

// OutputRecord is one window result of the reference job: the number of
// non-404 events of one address in one tumbling event-time window and the
// sum of their bytes.
type OutputRecord struct {
	IP          string
	WindowStart int64 // epoch ms, inclusive
	WindowEnd   int64 // epoch ms, exclusive
	Count       int64
	Bytes       int64
}

type windowKey struct {
	ip    string
	start int64
}

type agg struct{ count, bytes int64 }

// Model is the exact result the reference job must produce for a log.
type Model struct {
	size    int64 // window size, ms
	windows map[windowKey]agg
	// late holds what the late events would add to each window if a job
	// failed to drop them, and lateBytes the bytes of each of them; only
	// used to explain mismatches.
	late      map[windowKey]agg
	lateBytes map[windowKey][]int64
	finalWM   int64
}

// Expected computes the model of the log cfg describes for tumbling windows
// of the given size (aligned to the epoch) over the events with status other
// than 404 that are not late, and the final watermark of a job with the
// given max out-of-orderness that read every event: the minimum over the
// partitions that have events of (largest event time − outOfOrderness − 1).
// Partitions without events are left out: a job marks them idle.
func Expected(cfg Config, window, outOfOrderness time.Duration) *Model {
	cfg = cfg.WithDefaults()
	m := &Model{
		size:      max(window.Milliseconds(), 1),
		windows:   map[windowKey]agg{},
		late:      map[windowKey]agg{},
		lateBytes: map[windowKey][]int64{},
		finalWM:   NoWatermark,
	}
	if cfg.Events <= 0 || cfg.Validate() != nil {
		return m
	}
	g := NewGenerator(cfg)
	maxTs := make([]int64, max(cfg.Partitions, 1))
	for p := range maxTs {
		maxTs[p] = NoWatermark
	}
	for i := range cfg.Events {
		e, p, late := g.At(i)
		maxTs[p] = max(maxTs[p], e.Ts)
		if e.Status == 404 {
			continue
		}
		k := windowKey{e.IP, m.windowStart(e.Ts)}
		dst := m.windows
		if late {
			dst = m.late
			m.lateBytes[k] = append(m.lateBytes[k], int64(e.Bytes))
		}
		a := dst[k]
		a.count++
		a.bytes += int64(e.Bytes)
		dst[k] = a
	}
	ooo := outOfOrderness.Milliseconds()
	wm := int64(math.MaxInt64)
	for _, ts := range maxTs {
		if ts != NoWatermark {
			wm = min(wm, ts-ooo-1)
		}
	}
	if wm != math.MaxInt64 {
		m.finalWM = wm
	}
	return m
}

func (m *Model) windowStart(ts int64) int64 {
	r := ts % m.size
	if r < 0 {
		r += m.size
	}
	return ts - r
}

// FinalWatermark returns the watermark every window at or before which must
// have fired.
func (m *Model) FinalWatermark() int64 { return m.finalWM }

// SetFinalWatermark overrides the final watermark; pass math.MaxInt64 for a
// bounded job that ended, where end of stream fires every window.
func (m *Model) SetFinalWatermark(wm int64) { m.finalWM = wm }

// Windows returns the number of windows in the model.
func (m *Model) Windows() int { return len(m.windows) }

// DueWindows returns the number of windows that must have fired.
func (m *Model) DueWindows() int {
	n := 0
	for k := range m.windows {
		if m.due(k) {
			n++
		}
	}
	return n
}

// Window returns the expected count and bytes of one window, whether it is
// due, and whether the model has it at all.
func (m *Model) Window(ip string, start int64) (count, bytes int64, due, ok bool) {
	k := windowKey{ip, start}
	a, ok := m.windows[k]
	return a.count, a.bytes, ok && m.due(k), ok
}

// Records returns every window of the model as output records, sorted by
// start then address; with dueOnly just the due ones.
func (m *Model) Records(dueOnly bool) []OutputRecord {
	var out []OutputRecord
	for k, a := range m.windows {
		if dueOnly && !m.due(k) {
			continue
		}
		out = append(out, OutputRecord{IP: k.ip, WindowStart: k.start, WindowEnd: k.start + m.size, Count: a.count, Bytes: a.bytes})
	}
	slices.SortFunc(out, func(a, b OutputRecord) int {
		if a.WindowStart != b.WindowStart {
			if a.WindowStart < b.WindowStart {
				return -1
			}
			return 1
		}
		return strings.Compare(a.IP, b.IP)
	})
	return out
}

// due: the window's last millisecond is at or before the final watermark.
func (m *Model) due(k windowKey) bool {
	return m.finalWM != NoWatermark && k.start+m.size-1 <= m.finalWM
}

// Result classifies a job's output against the model. Every output record
// and every due window is counted exactly once, in the first class that
// applies: Unexpected, Duplicated (the extra copies; a duplicated window is
// not also Matched), Wrong, Matched; due windows without output are Lost,
// windows not yet due without output are Pending. The one exception: a
// duplicated window any copy of which differs from the model is also
// counted Wrong, so that OKAllowingDuplicates never accepts a wrong count.
type Result struct {
	Matched, Lost, Duplicated, Wrong, Unexpected, Pending int
	// LateCounted is how much of Wrong and Unexpected (windows and
	// records respectively) differs from the model only by some late
	// events: every copy of the window is exact or has counted late events
	// the job should have dropped (its watermark lagged behind the event's
	// partition). It is not a class of its own: these still fail OK.
	LateCounted int
	// Examples describes up to MaxExamples mismatches.
	Examples []string
}

// MaxExamples bounds Result.Examples.
const MaxExamples = 10

// OK reports whether the output is exactly what the model expects.
func (r Result) OK() bool {
	return r.Duplicated == 0 && r.OKAllowingDuplicates()
}

// OKAllowingDuplicates reports whether the output is what the model expects
// up to repeated copies of correct windows, as an at-least-once sink
// produces after a restart: nothing lost, wrong or unexpected.
func (r Result) OKAllowingDuplicates() bool {
	return r.Lost == 0 && r.Wrong == 0 && r.Unexpected == 0
}

func (r Result) String() string {
	return fmt.Sprintf("matched %d, lost %d, duplicated %d, wrong %d, unexpected %d, pending %d",
		r.Matched, r.Lost, r.Duplicated, r.Wrong, r.Unexpected, r.Pending)
}

func (r *Result) example(format string, args ...any) {
	if len(r.Examples) < MaxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// AddMalformed counts output records that could not be decoded as Wrong.
func (r *Result) AddMalformed(bad []Malformed) {
	for _, b := range bad {
		r.Wrong++
		r.example("malformed output at %s", b)
	}
}

// Verify classifies outputs against the model (see Result). Windows the
// model has that are not due may or may not have fired: present and exact
// they count as Matched, absent as Pending.
func (m *Model) Verify(outputs []OutputRecord) Result {
	var r Result
	// Examples of windows that only counted late events, then of exact
	// duplicates, come last: a job that restarted may have many, and they
	// must not crowd out the examples of other errors.
	var lateEx, dups []string
	exampleOf := func(lateOnly bool, format string, args ...any) {
		if !lateOnly {
			r.example(format, args...)
		} else if len(lateEx) < MaxExamples {
			lateEx = append(lateEx, fmt.Sprintf(format, args...))
		}
	}
	byKey := make(map[windowKey][]OutputRecord, len(outputs))
	var order []windowKey
	for _, o := range outputs {
		k := windowKey{o.IP, o.WindowStart}
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], o)
	}
	for _, k := range order {
		outs := byKey[k]
		want, ok := m.windows[k]
		if !ok {
			r.Unexpected += len(outs)
			lateOnly := m.allLateCounted(k, outs)
			hint := ""
			if l, isLate := m.late[k]; isLate && outs[0].Count == l.count && outs[0].Bytes == l.bytes {
				hint = " (exactly the late events of this window: the job did not drop them)"
			} else if lateOnly {
				hint = " (only late events of this window: the job did not drop them)"
			}
			if lateOnly {
				r.LateCounted += len(outs) // as Unexpected: every record
			}
			exampleOf(lateOnly, "unexpected window ip=%s start=%s: count=%d bytes=%d%s",
				k.ip, fmtTime(k.start), outs[0].Count, outs[0].Bytes, hint)
			continue
		}
		exact := true
		for _, o := range outs {
			if o.Count != want.count || o.Bytes != want.bytes || o.WindowEnd != k.start+m.size {
				exact = false
			}
		}
		switch {
		case len(outs) > 1 && exact:
			r.Duplicated += len(outs) - 1
			if len(dups) < MaxExamples {
				dups = append(dups, fmt.Sprintf("window ip=%s start=%s emitted %d times", k.ip, fmtTime(k.start), len(outs)))
			}
		case len(outs) > 1:
			r.Duplicated += len(outs) - 1
			r.Wrong++
			lateOnly := m.allLateCounted(k, outs)
			hint := ""
			if lateOnly {
				r.LateCounted++
				hint = " (the differences are late events: the job did not drop them)"
			}
			var got []string
			for _, o := range outs {
				got = append(got, fmt.Sprintf("count=%d bytes=%d end=%d", o.Count, o.Bytes, o.WindowEnd))
			}
			exampleOf(lateOnly, "wrong window ip=%s start=%s emitted %d times: got %s, want count=%d bytes=%d end=%d%s",
				k.ip, fmtTime(k.start), len(outs), strings.Join(got, "; "), want.count, want.bytes, k.start+m.size, hint)
		case !exact:
			r.Wrong++
			lateOnly := m.allLateCounted(k, outs)
			if lateOnly {
				r.LateCounted++
			}
			o := outs[0]
			hint := ""
			if l, isLate := m.late[k]; isLate && o.Count == want.count+l.count && o.Bytes == want.bytes+l.bytes {
				hint = " (the difference is exactly the late events: the job did not drop them)"
			} else if lateOnly {
				hint = " (the difference is some of the late events: the job did not drop them)"
			}
			exampleOf(lateOnly, "wrong window ip=%s start=%s: got count=%d bytes=%d end=%d, want count=%d bytes=%d end=%d%s",
				k.ip, fmtTime(k.start), o.Count, o.Bytes, o.WindowEnd, want.count, want.bytes, k.start+m.size, hint)
		default:
			r.Matched++
		}
	}
	var lost []windowKey
	for k := range m.windows {
		if _, present := byKey[k]; present {
			continue
		}
		if m.due(k) {
			r.Lost++
			lost = append(lost, k)
		} else {
			r.Pending++
		}
	}
	slices.SortFunc(lost, func(a, b windowKey) int {
		if a.start != b.start {
			if a.start < b.start {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ip, b.ip)
	})
	for _, k := range lost {
		want := m.windows[k]
		r.example("lost window ip=%s start=%s: want count=%d bytes=%d", k.ip, fmtTime(k.start), want.count, want.bytes)
	}
	for _, e := range append(lateEx, dups...) {
		r.example("%s", e)
	}
	return r
}

// allLateCounted reports whether every output of window k is exact or
// exceeds the model's window by a non-empty subset of its late events.
func (m *Model) allLateCounted(k windowKey, outs []OutputRecord) bool {
	want := m.windows[k] // zero for a window made only of late events
	for _, o := range outs {
		if o.WindowEnd != k.start+m.size {
			return false
		}
		if o.Count == want.count && o.Bytes == want.bytes {
			continue
		}
		if !subsetSums(m.lateBytes[k], o.Count-want.count, o.Bytes-want.bytes) {
			return false
		}
	}
	return true
}

// subsetSums reports whether n (at least 1) of the values sum to total.
// Late events are rare, so a window has few; past 20 the check only
// bounds n.
func subsetSums(values []int64, n, total int64) bool {
	if n < 1 || n > int64(len(values)) {
		return false
	}
	if len(values) > 20 {
		return true
	}
	for mask := 1; mask < 1<<len(values); mask++ {
		var c, sum int64
		for i, v := range values {
			if mask&(1<<i) != 0 {
				c++
				sum += v
			}
		}
		if c == n && sum == total {
			return true
		}
	}
	return false
}

func fmtTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}
