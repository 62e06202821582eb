package state

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
)

// The property test runs random operations against the backend and against
// a model written with plain maps: state access, timers, watermarks,
// processing time, TTL expiry, snapshots, and restores of an earlier
// snapshot at a random parallelism (the operations then go to the subtask
// owning the key's group). It checks every read, the order timers fire in
// on each subtask, and the whole state after every restore.

const (
	propMaxPar = 8
	propTTL    = 50 // ms, of state "ttl"
)

type modelKey struct {
	key any
	ns  int64
}

type modelTTL struct {
	v   int64
	exp int64
}

type model struct {
	value  map[modelKey]int64
	ttl    map[modelKey]modelTTL
	mapped map[modelKey]map[string]int64
	list   map[modelKey][]int64
	event  map[Timer]bool
	proc   map[Timer]bool
	wm     int64
}

func newModel() *model {
	return &model{value: map[modelKey]int64{}, ttl: map[modelKey]modelTTL{}, mapped: map[modelKey]map[string]int64{},
		list: map[modelKey][]int64{}, event: map[Timer]bool{}, proc: map[Timer]bool{}, wm: math.MinInt64}
}

func (m *model) clone() *model {
	c := newModel()
	maps.Copy(c.value, m.value)
	maps.Copy(c.ttl, m.ttl)
	for k, v := range m.mapped {
		c.mapped[k] = maps.Clone(v)
	}
	for k, v := range m.list {
		c.list[k] = slices.Clone(v)
	}
	maps.Copy(c.event, m.event)
	maps.Copy(c.proc, m.proc)
	return c // the watermark is not part of a snapshot
}

// due pops the model's due timers in order, letting fire add more.
func (m *model) due(set map[Timer]bool, upTo int64, fire func(Timer)) {
	for {
		var next *Timer
		for tm := range set {
			if tm.Time <= upTo && (next == nil || modelBefore(tm, *next)) {
				next = &tm
			}
		}
		if next == nil {
			return
		}
		delete(set, *next)
		fire(*next)
	}
}

// modelBefore is the documented firing order, written out apart from the
// backend's comparator: time, then key (null, bools, numbers, strings),
// then namespace.
func modelBefore(a, b Timer) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	rank := func(k any) (int, float64, string) {
		switch x := k.(type) {
		case nil:
			return 0, 0, ""
		case bool:
			if x {
				return 1, 1, ""
			}
			return 1, 0, ""
		case int64:
			return 2, float64(x), ""
		case float64:
			return 2, x, ""
		}
		return 3, 0, k.(string)
	}
	ra, fa, sa := rank(a.Key)
	rb, fb, sb := rank(b.Key)
	switch {
	case ra != rb:
		return ra < rb
	case fa != fb:
		return fa < fb
	case sa != sb:
		return sa < sb
	}
	return a.Namespace < b.Namespace
}

// subtask is one backend of the system under test with its typed states.
type subtask struct {
	kgs    dataflow.KeyGroupRange
	h      *Heap
	value  *Value[int64]
	ttl    *Value[int64]
	mapped *Map[string, int64]
	list   *List[int64]
}

func newSubtask(t *testing.T, clk *fakeClock, par, i int, snaps [][]byte) *subtask {
	r := dataflow.KeyGroupRangeFor(propMaxPar, par, i)
	s := &subtask{kgs: r, h: NewHeap(Config{MaxParallelism: propMaxPar, KeyGroups: &r, Now: clk.Now})}
	if snaps != nil {
		// Restored before the states are declared, as an operator does.
		if err := s.h.Restore(snaps); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if s.value, err = NewValue[int64](s.h, Descriptor{Name: "value"}, nil); err != nil {
		t.Fatal(err)
	}
	if s.ttl, err = NewValue[int64](s.h, Descriptor{Name: "ttl", TTL: TTL{Duration: propTTL * time.Millisecond}}, nil); err != nil {
		t.Fatal(err)
	}
	if s.mapped, err = NewMap[string, int64](s.h, Descriptor{Name: "map"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if s.list, err = NewList[int64](s.h, Descriptor{Name: "list"}, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPropertyStateAndTimersAgainstModel(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runProperty(t, uint64(seed)) })
	}
}

func runProperty(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	clk := &fakeClock{now: 1_000}
	keys := []any{nil, true, int64(1), int64(2), int64(-7), 2.5, "a", "b", "cc", "user-42"}
	m := newModel()
	par := 1
	subs := []*subtask{newSubtask(t, clk, 1, 0, nil)}
	type checkpoint struct {
		snaps func() [][]byte
		m     *model
	}
	var checkpoints []checkpoint
	// Asynchronous snapshots: captured at the step, encoded on another
	// goroutine that starts a random number of steps later, while the
	// operations go on changing the backends (the race detector checks
	// that the encoding shares nothing they change), and compared with
	// what Snapshot returned at the capture.
	type delayed struct {
		steps int
		start chan struct{}
	}
	var starts []delayed
	var waits []func() [][]byte
	owner := func(k any) *subtask {
		g := dataflow.KeyGroup(k, propMaxPar)
		return subs[dataflow.SubtaskForKeyGroup(propMaxPar, par, g)]
	}
	// fireLog checks that each subtask fires its timers in the model's
	// order restricted to that subtask's keys.
	fireAll := func(event bool, upTo int64) {
		var want []Timer
		fire := func(tm Timer) {
			want = append(want, tm)
			if tm.Time%5 == 0 { // firing registers a follow-up, maybe due at once
				m.event[Timer{tm.Key, tm.Namespace, tm.Time + 3}] = true
			}
		}
		if event {
			if upTo <= m.wm {
				return
			}
			m.wm = upTo
			m.due(m.event, upTo, fire)
		} else {
			m.due(m.proc, upTo, fire)
		}
		for si, s := range subs {
			var got []Timer
			f := func(tm Timer) error {
				if s.h.CurrentKey() != tm.Key {
					t.Fatalf("seed %d: firing %v with current key %v", seed, tm, s.h.CurrentKey())
				}
				got = append(got, tm)
				if tm.Time%5 == 0 {
					s.h.Timers().RegisterEventTime(tm.Namespace, tm.Time+3)
				}
				return nil
			}
			var err error
			if event {
				err = s.h.Timers().AdvanceWatermark(upTo, f)
			} else {
				err = s.h.Timers().AdvanceProcessingTime(upTo, f)
			}
			if err != nil {
				t.Fatal(err)
			}
			var mine []Timer
			for _, tm := range want {
				if owner(tm.Key) == s {
					mine = append(mine, tm)
				}
			}
			if !slices.Equal(got, mine) {
				t.Fatalf("seed %d: subtask %d/%d fired %v, model %v", seed, si, par, got, mine)
			}
		}
	}
	checkAll := func(where string) {
		for _, k := range keys {
			s := owner(k)
			s.h.SetCurrentKey(k)
			for ns := int64(0); ns < 2; ns++ {
				mk := modelKey{k, ns}
				got, ok, _ := s.value.Get(ns)
				want, wok := m.value[mk]
				if ok != wok || got != want {
					t.Fatalf("seed %d %s: value %v/%d = %v %v, model %v %v", seed, where, k, ns, got, ok, want, wok)
				}
				gl, _ := s.list.Get(ns)
				if !slices.Equal(gl, m.list[mk]) {
					t.Fatalf("seed %d %s: list %v/%d = %v, model %v", seed, where, k, ns, gl, m.list[mk])
				}
				gm := map[string]int64{}
				_ = s.mapped.Range(ns, func(uk string, v int64) bool { gm[uk] = v; return true })
				wm := m.mapped[mk]
				if len(gm) != len(wm) || (len(wm) > 0 && !maps.Equal(gm, wm)) {
					t.Fatalf("seed %d %s: map %v/%d = %v, model %v", seed, where, k, ns, gm, wm)
				}
			}
		}
		var events, procs int
		for _, s := range subs {
			for _, tm := range s.h.timers.event.timers() {
				if !m.event[tm] {
					t.Fatalf("seed %d %s: event timer %v not in the model", seed, where, tm)
				}
				events++
			}
			for _, tm := range s.h.timers.proc.timers() {
				if !m.proc[tm] {
					t.Fatalf("seed %d %s: processing timer %v not in the model", seed, where, tm)
				}
				procs++
			}
		}
		if events != len(m.event) || procs != len(m.proc) {
			t.Fatalf("seed %d %s: %d/%d timers, model %d/%d", seed, where, events, procs, len(m.event), len(m.proc))
		}
	}

	for step := range 600 {
		for i := 0; i < len(starts); i++ {
			if starts[i].steps--; starts[i].steps < 0 {
				close(starts[i].start)
				starts = slices.Delete(starts, i, i+1)
				i--
			}
		}
		k := keys[rng.IntN(len(keys))]
		ns := int64(rng.IntN(2))
		mk := modelKey{k, ns}
		s := owner(k)
		s.h.SetCurrentKey(k)
		switch op := rng.IntN(100); {
		case op < 15:
			v := rng.Int64N(100)
			_ = s.value.Put(ns, v)
			m.value[mk] = v
		case op < 18:
			_ = s.value.Delete(ns)
			delete(m.value, mk)
		case op < 28:
			v := rng.Int64N(100)
			_ = s.ttl.Put(ns, v)
			m.ttl[mk] = modelTTL{v, clk.now + propTTL}
		case op < 35:
			got, ok, _ := s.ttl.Get(ns)
			e, wok := m.ttl[mk]
			wok = wok && e.exp > clk.now
			if ok != wok || (ok && got != e.v) {
				t.Fatalf("seed %d step %d: ttl %v/%d = %v %v, model %+v at %d", seed, step, k, ns, got, ok, e, clk.now)
			}
		case op < 45:
			uk := fmt.Sprint("u", rng.IntN(4))
			v := rng.Int64N(100)
			_ = s.mapped.Put(ns, uk, v)
			if m.mapped[mk] == nil {
				m.mapped[mk] = map[string]int64{}
			}
			m.mapped[mk][uk] = v
		case op < 48:
			uk := fmt.Sprint("u", rng.IntN(4))
			_ = s.mapped.Delete(ns, uk)
			delete(m.mapped[mk], uk)
			if len(m.mapped[mk]) == 0 {
				delete(m.mapped, mk)
			}
		case op < 55:
			v := rng.Int64N(100)
			_ = s.list.Add(ns, v)
			m.list[mk] = append(m.list[mk], v)
		case op < 57:
			_ = s.list.Delete(ns)
			delete(m.list, mk)
		case op < 67:
			ts := m.wm
			if ts == math.MinInt64 {
				ts = 0
			}
			ts += rng.Int64N(12) - 2
			s.h.Timers().RegisterEventTime(ns, ts)
			m.event[Timer{k, ns, ts}] = true
		case op < 70:
			// Delete one of the key's timers, or a missing one.
			var ts int64 = rng.Int64N(50)
			for tm := range m.event {
				if tm.Key == k && tm.Namespace == ns {
					ts = tm.Time
					break
				}
			}
			s.h.Timers().DeleteEventTime(ns, ts)
			delete(m.event, Timer{k, ns, ts})
		case op < 74:
			ts := clk.now + rng.Int64N(60)
			s.h.Timers().RegisterProcessingTime(ns, ts)
			m.proc[Timer{k, ns, ts}] = true
		case op < 82:
			base := m.wm
			if base == math.MinInt64 {
				base = 0
			}
			fireAll(true, base+rng.Int64N(20)-3)
		case op < 88:
			clk.now += rng.Int64N(30)
			fireAll(false, clk.now)
		case op < 90:
			for _, s := range subs {
				s.h.Cleanup(rng.IntN(5))
			}
		case op < 95:
			var snaps [][]byte
			var encs []func() ([]byte, SnapshotInfo, error)
			async := rng.IntN(2) == 0
			for _, s := range subs {
				b, err := s.h.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				snaps = append(snaps, b)
				if async {
					enc, err := s.h.CaptureSnapshot()
					if err != nil {
						t.Fatal(err)
					}
					encs = append(encs, enc)
				}
			}
			get := func() [][]byte { return snaps }
			if async {
				start := make(chan struct{})
				done := make(chan [][]byte, 1)
				go func() {
					<-start
					var out [][]byte
					for _, enc := range encs {
						b, _, err := enc()
						if err != nil {
							panic(err)
						}
						out = append(out, b)
					}
					done <- out
				}()
				starts = append(starts, delayed{rng.IntN(30), start})
				want := snaps
				get = sync.OnceValue(func() [][]byte {
					got := <-done
					for i := range want {
						if !bytes.Equal(got[i], want[i]) {
							t.Fatalf("seed %d: asynchronous snapshot %d differs from the synchronous one at its capture", seed, i)
						}
					}
					return got
				})
				waits = append(waits, get)
			}
			checkpoints = append(checkpoints, checkpoint{get, m.clone()})
		default:
			if len(checkpoints) == 0 {
				continue
			}
			c := checkpoints[rng.IntN(len(checkpoints))]
			par = 1 + rng.IntN(4)
			subs = subs[:0]
			for _, d := range starts {
				close(d.start) // the restore needs them encoded
			}
			starts = nil
			snaps := c.snaps()
			for i := range par {
				subs = append(subs, newSubtask(t, clk, par, i, snaps))
			}
			m = c.m.clone()
			// Entries that expired since the snapshot are gone.
			for mk, e := range m.ttl {
				if e.exp <= clk.now {
					delete(m.ttl, mk)
				}
			}
			checkAll(fmt.Sprintf("step %d after restore at parallelism %d", step, par))
		}
	}
	checkAll("at the end")
	for _, d := range starts {
		close(d.start)
	}
	for _, w := range waits {
		w()
	}
}
