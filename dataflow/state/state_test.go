package state

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
)

type fakeClock struct{ now int64 }

func (c *fakeClock) Now() int64 { return c.now }

func newTestHeap(t *testing.T, clk *fakeClock) *Heap {
	t.Helper()
	return NewHeap(Config{MaxParallelism: 16, Now: clk.Now})
}

func TestValueMapListBasics(t *testing.T) {
	clk := &fakeClock{now: 1000}
	h := newTestHeap(t, clk)
	v, err := NewValue[int64](h, Descriptor{Name: "count"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMap[string, float64](h, Descriptor{Name: "m"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewList[string](h, Descriptor{Name: "l"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.SetCurrentKey("a")
	if _, ok, _ := v.Get(0); ok {
		t.Fatal("value before put")
	}
	_ = v.Put(0, 3)
	_ = v.Put(1, 4) // another namespace
	_ = m.Put(0, "x", 1.5)
	_ = l.Add(0, "p")
	_ = l.Add(0, "q")
	h.SetCurrentKey("b")
	if _, ok, _ := v.Get(0); ok {
		t.Fatal("key b sees key a's value")
	}
	_ = v.Put(0, 7)
	h.SetCurrentKey("a")
	if got, ok, _ := v.Get(0); !ok || got != 3 {
		t.Fatalf("a/0 = %v %v", got, ok)
	}
	if got, ok, _ := v.Get(1); !ok || got != 4 {
		t.Fatalf("a/1 = %v %v", got, ok)
	}
	if got, ok, _ := m.Get(0, "x"); !ok || got != 1.5 {
		t.Fatalf("map = %v %v", got, ok)
	}
	if got, _ := l.Get(0); !slices.Equal(got, []string{"p", "q"}) {
		t.Fatalf("list = %v", got)
	}
	if s := h.Stats(); s.Entries != 3+1+1 {
		t.Fatalf("stats %+v", s)
	}
	_ = m.Delete(0, "x")
	if m.Len(0) != 0 {
		t.Fatal("map entry not deleted")
	}
	if _, err := NewValue[int64](h, Descriptor{Name: "count"}, nil); !errors.Is(err, ErrDeclared) {
		t.Fatalf("second declaration: %v", err)
	}
}

func TestTTLNeverReturnsExpired(t *testing.T) {
	for _, upd := range []TTLUpdate{OnCreateAndWrite, OnReadAndWrite} {
		clk := &fakeClock{now: 1000}
		h := newTestHeap(t, clk)
		ttl := TTL{Duration: 100 * time.Millisecond, Update: upd}
		v, _ := NewValue[int64](h, Descriptor{Name: "v", TTL: ttl}, nil)
		m, _ := NewMap[int64, int64](h, Descriptor{Name: "m", TTL: ttl}, nil, nil)
		h.SetCurrentKey(int64(1))
		_ = v.Put(0, 1)
		_ = m.Put(0, 5, 1)
		clk.now += 60
		if _, ok, _ := v.Get(0); !ok {
			t.Fatal("expired early")
		}
		_, _, _ = m.Get(0, 5)
		clk.now += 60 // 120 after the write, 60 after the read
		_, ok, _ := v.Get(0)
		_, mok, _ := m.Get(0, 5)
		if want := upd == OnReadAndWrite; ok != want || mok != want {
			t.Fatalf("update %d: value %v map %v after 120ms, want %v", upd, ok, mok, want)
		}
		clk.now += 1000
		if _, ok, _ := v.Get(0); ok {
			t.Fatal("expired value returned")
		}
	}
}

func TestTTLCleanupAndSnapshotDropExpired(t *testing.T) {
	clk := &fakeClock{now: 1000}
	h := newTestHeap(t, clk)
	v, _ := NewValue[string](h, Descriptor{Name: "v", TTL: TTL{Duration: time.Second}}, nil)
	for i := range 100 {
		h.SetCurrentKey(int64(i))
		_ = v.Put(0, "x")
	}
	clk.now += 500
	for i := range 10 { // refreshed: survive
		h.SetCurrentKey(int64(i))
		_ = v.Put(0, "y")
	}
	clk.now += 600
	// A snapshot leaves the expired out without cleanup.
	snap, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h2 := newTestHeap(t, clk)
	v2, _ := NewValue[string](h2, Descriptor{Name: "v", TTL: TTL{Duration: time.Second}}, nil)
	if err := h2.Restore([][]byte{snap}); err != nil {
		t.Fatal(err)
	}
	if n := h2.Stats().Entries; n != 10 {
		t.Fatalf("restored %d entries, want 10", n)
	}
	_ = v2
	// Incremental cleanup in small steps gets the rest.
	for range 100 {
		h.Cleanup(3)
	}
	if n := h.Stats().Entries; n != 10 {
		t.Fatalf("%d entries after cleanup, want 10", n)
	}
}

func TestTimersOrderAndDedup(t *testing.T) {
	h := newTestHeap(t, &fakeClock{})
	tm := h.Timers()
	for _, k := range []any{"b", int64(2), "a", nil} {
		h.SetCurrentKey(k)
		tm.RegisterEventTime(0, 20)
		tm.RegisterEventTime(0, 20) // once
		tm.RegisterEventTime(0, 10)
	}
	h.SetCurrentKey("a")
	tm.DeleteEventTime(0, 10)
	var fired []Timer
	fire := func(x Timer) error {
		if h.CurrentKey() != x.Key {
			t.Fatalf("current key %v firing %v", h.CurrentKey(), x)
		}
		fired = append(fired, x)
		if x.Time == 10 && x.Key == nil {
			tm.RegisterEventTime(0, 15) // due in the same advance
		}
		return nil
	}
	if err := tm.AdvanceWatermark(19, fire); err != nil {
		t.Fatal(err)
	}
	want := []Timer{{nil, 0, 10}, {int64(2), 0, 10}, {"b", 0, 10}, {nil, 0, 15}}
	if !slices.Equal(fired, want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	fired = nil
	_ = tm.AdvanceWatermark(19, fire) // not advancing
	_ = tm.AdvanceWatermark(25, fire)
	want = []Timer{{nil, 0, 20}, {int64(2), 0, 20}, {"a", 0, 20}, {"b", 0, 20}}
	if !slices.Equal(fired, want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	h.SetCurrentKey("z")
	tm.RegisterProcessingTime(3, 500)
	if next, ok := tm.NextProcessingTime(); !ok || next != 500 {
		t.Fatalf("next processing time %v %v", next, ok)
	}
	fired = nil
	_ = tm.AdvanceProcessingTime(499, fire)
	_ = tm.AdvanceProcessingTime(500, fire)
	if !slices.Equal(fired, []Timer{{"z", 3, 500}}) {
		t.Fatalf("processing time fired %v", fired)
	}
}

func TestRestoreKindChangeAndMaxParallelism(t *testing.T) {
	clk := &fakeClock{}
	h := newTestHeap(t, clk)
	v, _ := NewValue[int64](h, Descriptor{Name: "s"}, nil)
	h.SetCurrentKey("k")
	_ = v.Put(0, 1)
	snap, _ := h.Snapshot()

	h2 := newTestHeap(t, clk)
	if err := h2.Restore([][]byte{snap}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewList[int64](h2, Descriptor{Name: "s"}, nil); err == nil {
		t.Fatal("a value restored as a list")
	}
	h3 := NewHeap(Config{MaxParallelism: 32, Now: clk.Now})
	if err := h3.Restore([][]byte{snap}); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("other max parallelism: %v", err)
	}
}

func TestUndeclaredStateIsCarried(t *testing.T) {
	clk := &fakeClock{}
	h := newTestHeap(t, clk)
	v, _ := NewValue[int64](h, Descriptor{Name: "later"}, nil)
	h.SetCurrentKey("k")
	_ = v.Put(0, 42)
	snap, _ := h.Snapshot()
	h2 := newTestHeap(t, clk)
	_ = h2.Restore([][]byte{snap})
	snap2, _ := h2.Snapshot() // not declared yet
	h3 := newTestHeap(t, clk)
	_ = h3.Restore([][]byte{snap2})
	v3, err := NewValue[int64](h3, Descriptor{Name: "later"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h3.SetCurrentKey("k")
	if got, ok, _ := v3.Get(0); !ok || got != 42 {
		t.Fatalf("got %v %v", got, ok)
	}
}

type oldShape struct {
	A int64  `json:"a"`
	B string `json:"b"`
}

type newShape struct {
	A int64   `json:"a"`
	B string  `json:"b"`
	C float64 `json:"c"`
}

func TestStateEvolution(t *testing.T) {
	clk := &fakeClock{}
	h := newTestHeap(t, clk)
	v, _ := NewValue[oldShape](h, Descriptor{Name: "s"}, nil)
	n, _ := NewValue[int64](h, Descriptor{Name: "n"}, nil)
	h.SetCurrentKey("k")
	_ = v.Put(0, oldShape{A: 1, B: "x"})
	_ = n.Put(0, 7)
	snap, _ := h.Snapshot()

	h2 := newTestHeap(t, clk)
	_ = h2.Restore([][]byte{snap})
	v2, err := NewValue[newShape](h2, Descriptor{Name: "s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := NewValue[float64](h2, Descriptor{Name: "n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h2.SetCurrentKey("k")
	if got, _, _ := v2.Get(0); got != (newShape{A: 1, B: "x"}) {
		t.Fatalf("added field: %+v", got)
	}
	if got, _, _ := n2.Get(0); got != 7 {
		t.Fatalf("int to float: %v", got)
	}
	h3 := newTestHeap(t, clk)
	_ = h3.Restore([][]byte{snap})
	if _, err := NewValue[bool](h3, Descriptor{Name: "n"}, nil); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("int as bool: %v", err)
	}
}

func TestRescaleSplitsByKeyGroup(t *testing.T) {
	clk := &fakeClock{}
	const maxPar = 16
	h := NewHeap(Config{MaxParallelism: maxPar, Now: clk.Now})
	v, _ := NewValue[int64](h, Descriptor{Name: "v"}, nil)
	for i := range 200 {
		h.SetCurrentKey(int64(i))
		_ = v.Put(0, int64(i))
		h.Timers().RegisterEventTime(0, int64(i))
	}
	snap, _ := h.Snapshot()
	total, timers := int64(0), 0
	for sub := range 3 {
		r := dataflow.KeyGroupRangeFor(maxPar, 3, sub)
		hs := NewHeap(Config{MaxParallelism: maxPar, KeyGroups: &r, Now: clk.Now})
		vs, _ := NewValue[int64](hs, Descriptor{Name: "v"}, nil)
		if err := hs.Restore([][]byte{snap}); err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			hs.SetCurrentKey(int64(i))
			got, ok, _ := vs.Get(0)
			if owned := r.Contains(dataflow.KeyGroup(int64(i), maxPar)); ok != owned || (ok && got != int64(i)) {
				t.Fatalf("subtask %d key %d: %v %v (owned %v)", sub, i, got, ok, owned)
			}
		}
		total += hs.Stats().Entries
		timers += hs.Timers().Len()
	}
	if total != 200 || timers != 200 {
		t.Fatalf("after rescale: %d entries, %d timers", total, timers)
	}
}
