package accesslog

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/eventtime"
)

// TestModelAgainstBruteForce recomputes the windows a different way: sort
// the kept events by address and time and cut runs at window boundaries.
func TestModelAgainstBruteForce(t *testing.T) {
	cfg := Config{Seed: 11, Events: 60000, Partitions: 3}
	const size = int64(60000)
	m := Expected(cfg, time.Minute, 5*time.Second)

	type ev struct {
		ip    string
		ts    int64
		bytes int64
	}
	var kept []ev
	maxTs := map[int32]int64{}
	g := NewGenerator(cfg)
	for i := range cfg.Events {
		e, p, late := g.At(i)
		if cur, ok := maxTs[p]; !ok || e.Ts > cur {
			maxTs[p] = e.Ts
		}
		if !late && e.Status != 404 {
			kept = append(kept, ev{e.IP, e.Ts, int64(e.Bytes)})
		}
	}
	wm := int64(math.MaxInt64)
	for _, ts := range maxTs {
		wm = min(wm, ts-5000-1)
	}
	if m.FinalWatermark() != wm {
		t.Fatalf("final watermark %d, brute force %d", m.FinalWatermark(), wm)
	}
	slices.SortFunc(kept, func(a, b ev) int {
		if c := strings.Compare(a.ip, b.ip); c != 0 {
			return c
		}
		return int(a.ts - b.ts)
	})
	var want []OutputRecord
	for i := 0; i < len(kept); {
		start := kept[i].ts / size * size
		r := OutputRecord{IP: kept[i].ip, WindowStart: start, WindowEnd: start + size}
		for i < len(kept) && kept[i].ip == r.IP && kept[i].ts < r.WindowEnd {
			r.Count++
			r.Bytes += kept[i].bytes
			i++
		}
		want = append(want, r)
	}
	got := m.Records(false)
	slices.SortFunc(want, func(a, b OutputRecord) int {
		if a.WindowStart != b.WindowStart {
			return int(a.WindowStart - b.WindowStart)
		}
		return strings.Compare(a.IP, b.IP)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("model has %d windows, brute force %d", len(got), len(want))
	}
	due := 0
	for _, r := range want {
		if r.WindowEnd-1 <= wm {
			due++
		}
	}
	if m.DueWindows() != due || due == 0 || due == len(want) {
		t.Fatalf("due windows: model %d, brute force %d of %d", m.DueWindows(), due, len(want))
	}
	r := m.Verify(m.Records(true))
	if !r.OK() || r.Matched != due || r.Pending != len(want)-due {
		t.Fatalf("due windows alone: %v", r)
	}
}

// TestModelMatchesSimulatedJob runs the reference job in miniature: per
// partition watermarks (eventtime.Tracker), partitions read in skewed
// chunks, a tumbling window that drops records behind the watermark and
// fires windows as it passes. Its output must verify, and every late event
// must have been dropped as late.
func TestModelMatchesSimulatedJob(t *testing.T) {
	cfg := Config{Seed: 5, Events: 80000, Partitions: 4}
	const size = int64(60000)
	g := NewGenerator(cfg)
	perPart := make([][]int64, 4)
	for i := range cfg.Events {
		_, p, _ := g.At(i)
		perPart[p] = append(perPart[p], i)
	}
	now := time.Unix(0, 0)
	tr := eventtime.NewTracker(5*time.Second, 0)
	for p := range perPart {
		tr.AddPartition(int32(p), now)
	}
	open := map[int64]map[string]*OutputRecord{} // by window start, address
	var out []OutputRecord
	wm := eventtime.NoWatermark
	dropped, lateKept := 0, 0
	fire := func() {
		for start, byIP := range open {
			if start+size-1 <= wm {
				for _, r := range byIP {
					out = append(out, *r)
				}
				delete(open, start)
			}
		}
	}
	pos := make([]int, 4)
	for chunk := 1500; ; {
		progressed := false
		for p := range perPart {
			for n := 0; n < chunk && pos[p] < len(perPart[p]); n++ {
				progressed = true
				i := perPart[p][pos[p]]
				pos[p]++
				e, _, late := g.At(i)
				tr.Observe(int32(p), e.Ts, now)
				if w, changed, _ := tr.Advance(now); changed {
					wm = w
					fire()
				}
				if e.Status == 404 {
					continue
				}
				start := e.Ts / size * size
				if start+size-1 <= wm {
					if !late {
						t.Fatalf("event %d dropped as late but was generated in time", i)
					}
					dropped++
					continue
				}
				if late {
					lateKept++
				}
				if open[start] == nil {
					open[start] = map[string]*OutputRecord{}
				}
				r := open[start][e.IP]
				if r == nil {
					r = &OutputRecord{IP: e.IP, WindowStart: start, WindowEnd: start + size}
					open[start][e.IP] = r
				}
				r.Count++
				r.Bytes += int64(e.Bytes)
			}
		}
		if !progressed {
			break
		}
	}
	if lateKept != 0 || dropped == 0 {
		t.Fatalf("late events: %d dropped, %d counted", dropped, lateKept)
	}
	m := Expected(cfg, time.Minute, 5*time.Second)
	if m.FinalWatermark() != wm {
		t.Fatalf("model final watermark %d, job %d", m.FinalWatermark(), wm)
	}
	var still []OutputRecord
	for _, byIP := range open {
		for _, rec := range byIP {
			still = append(still, *rec)
		}
	}
	r := m.Verify(out)
	if !r.OK() || r.Matched != m.DueWindows() || r.Pending != len(still) {
		t.Fatalf("simulated job: %v (due %d, still open %d) %v", r, m.DueWindows(), len(still), r.Examples)
	}
	// A bounded run ends with the maximal watermark: everything is due.
	out = append(out, still...)
	m.SetFinalWatermark(math.MaxInt64)
	if r := m.Verify(out); !r.OK() || r.Pending != 0 || r.Matched != m.Windows() {
		t.Fatalf("after end of stream: %v", r)
	}
}

func TestVerifyClassification(t *testing.T) {
	cfg := Config{Seed: 2, Events: 30000, Partitions: 2}
	m := Expected(cfg, time.Minute, 5*time.Second)
	due := m.Records(true)
	all := m.Records(false)
	var pending []OutputRecord
	for _, r := range all {
		if _, _, isDue, _ := m.Window(r.IP, r.WindowStart); !isDue {
			pending = append(pending, r)
		}
	}
	if len(due) < 10 || len(pending) < 2 {
		t.Fatalf("log too small: %d due, %d pending", len(due), len(pending))
	}
	nPending := len(pending)
	off := func(r OutputRecord, dc, db int64) OutputRecord { r.Count += dc; r.Bytes += db; return r }

	tests := []struct {
		name string
		out  func() []OutputRecord
		want Result
	}{
		{"exact", func() []OutputRecord { return slices.Clone(due) },
			Result{Matched: len(due), Pending: nPending}},
		{"exact with pending fired", func() []OutputRecord { return append(slices.Clone(due), pending[0]) },
			Result{Matched: len(due) + 1, Pending: nPending - 1}},
		{"lost", func() []OutputRecord { return slices.Clone(due[2:]) },
			Result{Matched: len(due) - 2, Lost: 2, Pending: nPending}},
		{"duplicated", func() []OutputRecord { return append(slices.Clone(due), due[0], due[0], due[1]) },
			Result{Matched: len(due) - 2, Duplicated: 3, Pending: nPending}},
		{"duplicated wrong", func() []OutputRecord { return append(slices.Clone(due), off(due[0], 1, 0), due[1]) },
			Result{Matched: len(due) - 2, Duplicated: 2, Wrong: 1, Pending: nPending}},
		{"wrong count", func() []OutputRecord {
			o := slices.Clone(due)
			o[3] = off(o[3], 1, 0)
			return o
		}, Result{Matched: len(due) - 1, Wrong: 1, Pending: nPending}},
		{"wrong bytes", func() []OutputRecord {
			o := slices.Clone(due)
			o[4] = off(o[4], 0, -7)
			return o
		}, Result{Matched: len(due) - 1, Wrong: 1, Pending: nPending}},
		{"wrong end", func() []OutputRecord {
			o := slices.Clone(due)
			o[5].WindowEnd++
			return o
		}, Result{Matched: len(due) - 1, Wrong: 1, Pending: nPending}},
		{"pending fired wrong", func() []OutputRecord { return append(slices.Clone(due), off(pending[0], -1, 0)) },
			Result{Matched: len(due), Wrong: 1, Pending: nPending - 1}},
		{"unexpected", func() []OutputRecord {
			return append(slices.Clone(due),
				OutputRecord{IP: "192.0.2.1", WindowStart: due[0].WindowStart, WindowEnd: due[0].WindowEnd, Count: 1, Bytes: 100},
				OutputRecord{IP: due[0].IP, WindowStart: due[0].WindowStart + 1, WindowEnd: due[0].WindowEnd + 1, Count: 1, Bytes: 100})
		}, Result{Matched: len(due), Unexpected: 2, Pending: nPending}},
		{"nothing", func() []OutputRecord { return nil },
			Result{Lost: len(due), Pending: nPending}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := m.Verify(tc.out())
			if len(got.Examples) > MaxExamples {
				t.Fatalf("%d examples", len(got.Examples))
			}
			wantOK := tc.want.Lost+tc.want.Duplicated+tc.want.Wrong+tc.want.Unexpected == 0
			if got.OK() != wantOK || (len(got.Examples) > 0) == wantOK {
				t.Fatalf("OK %v with examples %q", got.OK(), got.Examples)
			}
			wantOKDup := tc.want.Lost+tc.want.Wrong+tc.want.Unexpected == 0
			if got.OKAllowingDuplicates() != wantOKDup {
				t.Fatalf("OKAllowingDuplicates %v, want %v", got.OKAllowingDuplicates(), wantOKDup)
			}
			got.Examples = nil
			if got.String() != tc.want.String() {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestVerifyHintsLateEvents(t *testing.T) {
	cfg := Config{Seed: 9, Events: 100000, Partitions: 2}
	m := Expected(cfg, time.Minute, 5*time.Second)
	// Add every late event back into the output as a job that failed to
	// drop them would.
	out := map[windowKey]OutputRecord{}
	for _, r := range m.Records(false) {
		out[windowKey{r.IP, r.WindowStart}] = r
	}
	for k, l := range m.late {
		r, ok := out[k]
		if !ok {
			r = OutputRecord{IP: k.ip, WindowStart: k.start, WindowEnd: k.start + m.size}
		}
		r.Count += l.count
		r.Bytes += l.bytes
		out[k] = r
	}
	var outs []OutputRecord
	for _, r := range out {
		outs = append(outs, r)
	}
	m.SetFinalWatermark(math.MaxInt64)
	res := m.Verify(outs)
	if res.OK() || len(res.Examples) == 0 {
		t.Fatalf("late events counted but verification passed: %v", res)
	}
	for _, ex := range res.Examples {
		if !strings.Contains(ex, "late events") {
			t.Fatalf("example without a late hint: %s", ex)
		}
	}
	if res.LateCounted != res.Wrong+res.Unexpected || res.LateCounted != len(m.late) {
		t.Fatalf("LateCounted %d, want every one of the %d windows with late events (%v)", res.LateCounted, len(m.late), res)
	}
}

// TestVerifyLateCounted: a window that counted some of its late events, alone or as a second copy after an exact one, is LateCounted; a
// window off by anything else is not.
func TestVerifyLateCounted(t *testing.T) {
	cfg := Config{Seed: 9, Events: 250000, Partitions: 2}
	m := Expected(cfg, time.Minute, 5*time.Second)
	m.SetFinalWatermark(math.MaxInt64)
	var k windowKey
	for key, bs := range m.lateBytes {
		if _, ok := m.windows[key]; ok && len(bs) >= 1 {
			k = key
			break
		}
	}
	if k.ip == "" {
		t.Fatal("no window with a late event")
	}
	base := m.Records(false)
	at := slices.IndexFunc(base, func(r OutputRecord) bool { return r.IP == k.ip && r.WindowStart == k.start })
	one := base[at]
	one.Count++
	one.Bytes += m.lateBytes[k][0]
	otherBytes := one
	otherBytes.Bytes++

	tests := []struct {
		name             string
		out              []OutputRecord
		wrong, late, dup int
	}{
		{"one late event counted", slices.Replace(slices.Clone(base), at, at+1, one), 1, 1, 0},
		{"a correct copy, then one with a late event", append(slices.Clone(base), one), 1, 1, 1},
		{"off by other bytes", slices.Replace(slices.Clone(base), at, at+1, otherBytes), 1, 0, 0},
		{"a correct copy, then one off by other bytes", append(slices.Clone(base), otherBytes), 1, 0, 1},
	}
	// A window made only of late events, emitted twice: two unexpected
	// records, both late counted.
	lateOnly := OutputRecord{IP: "192.0.2.77", WindowEnd: m.size, Count: 1}
	m.lateBytes[windowKey{lateOnly.IP, 0}] = []int64{123}
	lateOnly.Bytes = 123
	if r := m.Verify(append(slices.Clone(base), lateOnly, lateOnly)); r.Unexpected != 2 || r.LateCounted != 2 {
		t.Fatalf("a late-only window twice: %v, late counted %d", r, r.LateCounted)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := m.Verify(tc.out)
			if r.Wrong != tc.wrong || r.LateCounted != tc.late || r.Duplicated != tc.dup || r.Lost+r.Unexpected != 0 {
				t.Fatalf("%v, late counted %d; want wrong %d, late counted %d, duplicated %d", r, r.LateCounted, tc.wrong, tc.late, tc.dup)
			}
		})
	}
}

func TestExpectedEmpty(t *testing.T) {
	m := Expected(Config{}, time.Minute, time.Second)
	if m.Windows() != 0 || m.FinalWatermark() != NoWatermark {
		t.Fatal("empty log has windows")
	}
	r := m.Verify([]OutputRecord{{IP: "a", Count: 1}})
	if r.Unexpected != 1 || r.OK() {
		t.Fatalf("%v", r)
	}
}
