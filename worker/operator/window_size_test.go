package operator_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/weir-stream/weir/dataflow"
)

func stateGauge(t *testing.T, c *dataflow.Counters) int64 {
	t.Helper()
	ss := c.StateSizes()
	if len(ss) != 1 || ss[0].Node != "win" {
		t.Fatalf("want one state gauge for node win, got %+v", ss)
	}
	return ss[0].Bytes
}

func heapNow() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// The window's state size estimate follows its keys: it grows with new
// windows (within a factor of the heap they really take), is refreshed on
// watermarks and restore, and drops to nothing on Close.
func TestWindowStateSizeEstimate(t *testing.T) {
	const keys = 5000
	recs := make([]dataflow.Record, keys)
	for i := range recs {
		recs[i] = kr(fmt.Sprintf("user-%06d", i), 5, "v", int64(i))
	}
	h := stateHarness(t, nil)
	if err := h.Open(); err != nil {
		t.Fatal(err)
	}
	if got := stateGauge(t, h.Metrics()); got != 0 {
		t.Fatalf("empty window: %d bytes", got)
	}
	before := heapNow()
	for _, r := range recs {
		if err := h.Operator().Process(&r, h.Output()); err != nil {
			t.Fatal(err)
		}
	}
	run(t, h, wm(0)) // fires nothing; refreshes the gauge
	grown := heapNow() - before
	est := stateGauge(t, h.Metrics())
	t.Logf("%d keys in 2 windows each: estimate %d bytes, heap grew %d bytes", keys, est, grown)
	if est < grown/3 || est > grown*3 {
		t.Fatalf("estimate %d bytes is far from the %d bytes the heap grew", est, grown)
	}
	snap, err := h.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(recs)

	h2 := stateHarness(t, nil)
	if err := h2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if err := h2.Open(); err != nil {
		t.Fatal(err)
	}
	if got := stateGauge(t, h2.Metrics()); got < est/2 {
		t.Fatalf("restored: estimate %d bytes, before %d", got, est)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := stateGauge(t, h.Metrics()); got != 0 {
		t.Fatalf("closed: %d bytes", got)
	}
}
