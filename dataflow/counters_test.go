package dataflow

import (
	"math"
	"testing"
	"time"
)

// TestBusyIdleBackpressured: a task's running time splits into busy, idle
// and backpressured time; busy stops growing when the task stops; nil
// counters take idle marks without effect.
func TestBusyIdleBackpressured(t *testing.T) {
	var c Counters
	if c.Busy() != 0 {
		t.Fatal("busy before Start")
	}
	before := time.Now()
	c.Start()
	w := c.IdleStart()
	if c.IdleStart() {
		t.Fatal("a second IdleStart during a wait counted")
	}
	for c.Idle() == 0 { // a wait in progress counts
	}
	c.IdleEnd(w)
	b := c.BlockStart()
	for c.Backpressured() == 0 {
	}
	c.BlockEnd(b)
	c.Stop()
	after := time.Now()
	idle, bp, busy := c.Idle(), c.Backpressured(), c.Busy()
	if idle <= 0 || bp <= 0 || busy < 0 || idle+bp+busy > after.Sub(before) {
		t.Fatalf("idle %v + backpressured %v + busy %v, want each > 0 and at most the %v the task ran", idle, bp, busy, after.Sub(before))
	}
	for time.Since(after) < time.Millisecond { // let the clock move on
	}
	if c.Busy() != busy || c.Idle() != idle {
		t.Fatalf("busy %v → %v, idle %v → %v after Stop", busy, c.Busy(), idle, c.Idle())
	}
	var none *Counters
	none.IdleEnd(none.IdleStart())
}

func TestWatermarkSentinels(t *testing.T) {
	var c Counters
	if _, ok := c.Watermark(); ok {
		t.Fatal("a watermark before any")
	}
	c.SetWatermark(math.MinInt64)
	c.SetWatermark(MaxWatermark)
	if _, ok := c.Watermark(); ok {
		t.Fatal("a sentinel counted as a watermark")
	}
	c.SetWatermark(0)
	if wm, ok := c.Watermark(); !ok || wm != 0 {
		t.Fatalf("watermark %d %v, want 0", wm, ok)
	}
	c.SetWatermark(1_700_000_000_000)
	if wm, _ := c.Watermark(); wm != 1_700_000_000_000 {
		t.Fatalf("watermark %d", wm)
	}
}

// BenchmarkIdleStartEnd is what a task pays per input batch (and a Kafka
// source per wait) to count its idle time.
func BenchmarkIdleStartEnd(b *testing.B) {
	var c Counters
	c.Start()
	for b.Loop() {
		c.IdleEnd(c.IdleStart())
	}
}
