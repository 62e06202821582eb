package sdkexamples

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/weir-stream/weir/sdk"
)

type activity struct {
	user  string
	ts    int64
	value int64
}

// sessionModel is sessionization written plainly: each user's events in
// time order, a new session wherever two consecutive ones are gap or more
// apart.
func sessionModel(events []activity, gap int64) []string {
	byUser := map[string][]activity{}
	for _, e := range events {
		byUser[e.user] = append(byUser[e.user], e)
	}
	var out []string
	for user, es := range byUser {
		slices.SortStableFunc(es, func(a, b activity) int { return int(a.ts - b.ts) })
		s := Session{Key: user, Start: es[0].ts}
		for i, e := range es {
			if i > 0 && e.ts-es[i-1].ts >= gap {
				s.End = es[i-1].ts + gap
				out = append(out, sessionLine(s))
				s = Session{Key: user, Start: e.ts}
			}
			s.Events++
			s.Total += e.value
		}
		s.End = es[len(es)-1].ts + gap
		out = append(out, sessionLine(s))
	}
	slices.Sort(out)
	return out
}

func sessionLine(s Session) string {
	return fmt.Sprintf("%v %d-%d %d %d", s.Key, s.Start, s.End, s.Events, s.Total)
}

func newSession(t *testing.T, gap string) func() sdk.ProcessFunction[Activity, Session] {
	return func() sdk.ProcessFunction[Activity, Session] {
		fn, err := NewSessionizer(SessionConfig{Gap: gap})
		if err != nil {
			t.Fatal(err)
		}
		return fn
	}
}

// TestSessionsAgainstModelAcrossRestores feeds random activity, out of
// order by up to the watermark's bound, with the watermark a source would
// give (the largest time so far less the bound and 1 ms), delivered late
// at random, and snapshots and restores the subtasks at random
// parallelisms on the way. The sessions emitted are the model's, each
// once: sessions bridged by an event that arrived after its neighbours
// merged, none closed early, none lost in a restore.
func TestSessionsAgainstModelAcrossRestores(t *testing.T) {
	const (
		gap   = int64(30 * 60_000)
		bound = int64(10 * 60_000) // max_out_of_orderness
		t0    = int64(1_767_225_600_000)
	)
	users := []string{"ann", "bob", "cid", "dan", "eve", "fay"}
	bridged := 0
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 2))
		var events []activity
		base := t0
		for range 400 {
			base += rng.Int64N(6 * 60_000)
			events = append(events, activity{users[rng.IntN(len(users))], base + rng.Int64N(bound+1), rng.Int64N(100)})
		}
		want := sessionModel(events, gap)

		par := 1
		hs := sessionHarnesses(t, newSession(t, "30m"), par, nil)
		var got []string
		collect := func() {
			for _, h := range hs {
				out, err := h.Output()
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range out {
					if e.Key != e.Value.Key || e.Time != e.Value.End-1 {
						t.Fatalf("seed %d: session %+v emitted with key %v at %d", seed, e.Value, e.Key, e.Time)
					}
					got = append(got, sessionLine(e.Value))
				}
			}
		}
		maxTS, wm := int64(math.MinInt64), int64(math.MinInt64)
		for i, e := range events {
			if i > 0 && rng.IntN(60) == 0 {
				var snaps [][]byte
				for _, h := range hs {
					s, err := h.Snapshot()
					if err != nil {
						t.Fatal(err)
					}
					snaps = append(snaps, s)
				}
				par = 1 + rng.IntN(4)
				hs = sessionHarnesses(t, newSession(t, "30m"), par, snaps)
			}
			srcWM := int64(0)
			if maxTS != math.MinInt64 {
				srcWM = maxTS - bound - 1
				if rng.IntN(3) == 0 { // the subtask's watermark lags its sources'
					wm = srcWM
					for _, h := range hs {
						if err := h.Watermark(wm); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if bridges(events[:i], e, gap) {
				bridged++
			}
			if err := hs[owner(e.user, par)].ProcessWithSourceWatermark(e.user, e.ts, srcWM, Activity{Value: e.value}); err != nil {
				t.Fatal(err)
			}
			maxTS = max(maxTS, e.ts)
			collect()
		}
		for _, h := range hs {
			if err := h.Watermark(math.MaxInt64); err != nil {
				t.Fatal(err)
			}
		}
		collect()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: sessions\n%s\nmodel\n%s", seed, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, h := range hs {
			if n := h.StateEntries(); n != 0 {
				t.Fatalf("seed %d: %d state entries left after every session closed", seed, n)
			}
		}
	}
	if bridged == 0 {
		t.Fatal("no event bridged two sessions: the inputs test no merging")
	}
	t.Logf("%d events bridged two or more sessions", bridged)
}

// bridges says whether e, arriving after before, joins two or more
// sessions that the user's earlier events formed.
func bridges(before []activity, e activity, gap int64) bool {
	var ts []int64
	for _, b := range before {
		if b.user == e.user {
			ts = append(ts, b.ts)
		}
	}
	slices.Sort(ts)
	n := 0
	for i := 0; i < len(ts); {
		start, last := ts[i], ts[i]
		for i++; i < len(ts) && ts[i]-last < gap; i++ {
			last = ts[i]
		}
		if start < e.ts+gap && e.ts < last+gap {
			n++
		}
	}
	return n >= 2
}

func sessionHarnesses(t *testing.T, fn func() sdk.ProcessFunction[Activity, Session], par int, snaps [][]byte) []*sdk.TestHarness[Activity, Session] {
	t.Helper()
	var hs []*sdk.TestHarness[Activity, Session]
	for i := range par {
		opts := []sdk.HarnessOption{sdk.WithSubtask(maxPar, par, i)}
		if snaps != nil {
			opts = append(opts, sdk.WithRestore(snaps...))
		}
		h, err := sdk.NewTestHarness(fn(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}
