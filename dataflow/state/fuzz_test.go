package state

import (
	"testing"
	"time"
)

func fuzzSeed(t testing.TB) []byte {
	clk := &fakeClock{now: 10}
	h := NewHeap(Config{MaxParallelism: 16, Now: clk.Now})
	v, _ := NewValue[int64](h, Descriptor{Name: "v", TTL: TTL{Duration: time.Hour}}, nil)
	m, _ := NewMap[string, int64](h, Descriptor{Name: "m"}, nil, nil)
	l, _ := NewList[string](h, Descriptor{Name: "l"}, nil)
	for i, k := range []any{"a", int64(3), 2.5, true, nil} {
		h.SetCurrentKey(k)
		_ = v.Put(int64(i), int64(i))
		_ = m.Put(0, "x", 1)
		_ = l.Add(0, "s")
		h.Timers().RegisterEventTime(0, int64(i))
		h.Timers().RegisterProcessingTime(1, int64(i))
	}
	b, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRestore feeds arbitrary bytes to Restore: it never panics, and what
// it accepts snapshots and restores again.
func FuzzRestore(f *testing.F) {
	f.Add(fuzzSeed(f))
	f.Add([]byte("wkst\x01\x10\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		clk := &fakeClock{now: 10}
		h := NewHeap(Config{MaxParallelism: 16, Now: clk.Now})
		// One state declared before the restore, the others after.
		if _, err := NewValue[int64](h, Descriptor{Name: "v", TTL: TTL{Duration: time.Hour}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := h.Restore([][]byte{data}); err != nil {
			return
		}
		_, _ = NewMap[string, int64](h, Descriptor{Name: "m"}, nil, nil)
		_, _ = NewList[string](h, Descriptor{Name: "l"}, nil)
		_ = h.Timers().AdvanceWatermark(100, func(Timer) error { return nil })
		b, err := h.Snapshot()
		if err != nil {
			t.Fatalf("snapshot after restore: %v", err)
		}
		h2 := NewHeap(Config{MaxParallelism: 16, Now: clk.Now})
		if err := h2.Restore([][]byte{b}); err != nil {
			t.Fatalf("restoring a snapshot of a restored backend: %v", err)
		}
	})
}
