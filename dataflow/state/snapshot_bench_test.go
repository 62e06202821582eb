package state

import (
	"fmt"
	"testing"
)

// benchHeap is a large keyed state as the SDK's count per key and minute
// holds it: 500,000 string keys, each with a map of two minutes and an
// event-time timer per minute, and a value.
func benchHeap(b *testing.B) *Heap {
	h := NewHeap(Config{MaxParallelism: 128, Now: func() int64 { return 0 }})
	m, err := NewMap[int64, int64](h, Descriptor{Name: "counts"}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewValue[int64](h, Descriptor{Name: "last"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 500_000 {
		h.SetCurrentKey(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
		for w := int64(1); w <= 2; w++ {
			_ = m.Put(0, w*60_000, int64(i))
			h.Timers().RegisterEventTime(0, w*60_000-1)
		}
		_ = v.Put(0, int64(i))
	}
	return h
}

// BenchmarkSnapshotSync500kKeys is the whole snapshot on the task
// goroutine, as before asynchronous snapshots.
func BenchmarkSnapshotSync500kKeys(b *testing.B) {
	h := benchHeap(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotCapture500kKeys is the part of an asynchronous
// snapshot that runs at the barrier.
func BenchmarkSnapshotCapture500kKeys(b *testing.B) {
	h := benchHeap(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.CaptureSnapshot(); err != nil {
			b.Fatal(err)
		}
	}
}
