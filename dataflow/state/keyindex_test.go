package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// Key ids are freed when a key's last entry or timer goes and reused by
// the next new key; a timer deleted and registered again, and buckets
// compacted under many deletions, must still fire once each, in (time,
// key, namespace) order, with the right key current.
func TestKeyIDReuseAndTimerCompaction(t *testing.T) {
	clk := &fakeClock{now: 1000}
	h := newTestHeap(t, clk)
	v, err := NewValue[string](h, Descriptor{Name: "v"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	model := map[Timer]bool{}
	values := map[any]string{}
	var wm int64
	for round := range 40 {
		for i := range 300 {
			k := any(fmt.Sprint("k", rng.IntN(200)))
			if i%7 == 0 {
				k = int64(rng.IntN(50))
			}
			h.SetCurrentKey(k)
			ts := wm + 1 + rng.Int64N(4)
			ns := rng.Int64N(2)
			switch rng.IntN(4) {
			case 0, 1:
				h.Timers().RegisterEventTime(ns, ts)
				model[Timer{k, ns, ts}] = true
			case 2:
				h.Timers().DeleteEventTime(ns, ts)
				delete(model, Timer{k, ns, ts})
			default:
				if rng.IntN(2) == 0 {
					_ = v.Put(0, fmt.Sprint(k, round))
					values[k] = fmt.Sprint(k, round)
				} else {
					_ = v.Delete(0)
					delete(values, k)
				}
			}
		}
		// Delete most timers, so that the buckets are compacted, and
		// register a few of them again.
		for tm := range model {
			if rng.IntN(10) < 8 {
				h.SetCurrentKey(tm.Key)
				h.Timers().DeleteEventTime(tm.Namespace, tm.Time)
				delete(model, tm)
				if rng.IntN(4) == 0 {
					h.Timers().RegisterEventTime(tm.Namespace, tm.Time)
					model[tm] = true
				}
			}
		}
		wm += 2
		var want []Timer
		for tm := range model {
			if tm.Time <= wm {
				want = append(want, tm)
				delete(model, tm)
			}
		}
		slices.SortFunc(want, compareTimers)
		var got []Timer
		err := h.Timers().AdvanceWatermark(wm, func(tm Timer) error {
			if h.CurrentKey() != tm.Key {
				t.Fatalf("firing %v with key %v current", tm, h.CurrentKey())
			}
			if s, ok, _ := v.Get(0); values[tm.Key] != s || ok != (values[tm.Key] != "") {
				t.Fatalf("key %v sees value %q %v, want %q", tm.Key, s, ok, values[tm.Key])
			}
			got = append(got, tm)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: fired %v, want %v", round, got, want)
		}
		if h.Timers().Len() != len(model) {
			t.Fatalf("round %d: %d timers, model %d", round, h.Timers().Len(), len(model))
		}
		// Every live id is referenced by a value or a timer item; the
		// others were freed.
		live := map[any]bool{}
		for k := range values {
			live[k] = true
		}
		for tm := range model {
			live[tm.Key] = true
		}
		for k := range live {
			if h.keys.lookup(k) == noKey {
				t.Fatalf("round %d: key %v has state but no id", round, k)
			}
		}
		if n := len(h.keys.ids) + len(h.keys.strs); n < len(live) || n > len(live)+h.timers.event.items {
			t.Fatalf("round %d: %d ids for %d live keys (%d timer items)", round, n, len(live), h.timers.event.items)
		}
	}
}
