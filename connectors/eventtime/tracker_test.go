package eventtime

import (
	"testing"
	"time"
)

func TestTrackerMinOverPartitionsAndIdleness(t *testing.T) {
	t0 := time.Unix(0, 0)
	tr := NewTracker(5*time.Millisecond, time.Second)
	tr.AddPartition(0, t0)
	tr.AddPartition(1, t0)
	tr.Observe(0, 100, t0)
	if _, changed, _ := tr.Advance(t0); changed {
		t.Fatal("watermark advanced while partition 1 has seen nothing")
	}
	tr.Observe(1, 50, t0)
	if wm, changed, _ := tr.Advance(t0); !changed || wm != 44 {
		t.Fatalf("wm = %d changed=%v, want 44 true", wm, changed)
	}
	// Partition 1 goes quiet: after the idle timeout it no longer holds the
	// watermark back.
	t1 := t0.Add(1500 * time.Millisecond)
	tr.Observe(0, 200, t1)
	if wm, changed, idle := tr.Advance(t1); !changed || wm != 194 || idle {
		t.Fatalf("wm = %d changed=%v idle=%v, want 194 true false", wm, changed, idle)
	}
	// A record on partition 1 makes it active again; the watermark never
	// goes back.
	tr.Observe(1, 60, t1)
	if wm, changed, _ := tr.Advance(t1); changed || wm != 194 {
		t.Fatalf("wm = %d changed=%v, want 194 false", wm, changed)
	}
	t2 := t1.Add(2 * time.Second)
	if _, _, idle := tr.Advance(t2); !idle {
		t.Fatal("all partitions quiet, want allIdle")
	}
}

func TestPartitionWatermark(t *testing.T) {
	now := time.Unix(0, 0)
	tr := NewTracker(5*time.Millisecond, 0)
	if got := tr.PartitionWatermark(1); got != NoWatermark {
		t.Fatalf("unknown partition: %d", got)
	}
	tr.AddPartition(1, now)
	tr.Observe(1, 100, now)
	tr.Observe(1, 90, now) // out of order: the partition's max stays
	tr.Observe(2, 1000, now)
	if got := tr.PartitionWatermark(1); got != 94 {
		t.Fatalf("partition 1: %d, want 100-5-1", got)
	}
	if got := tr.PartitionWatermark(2); got != 994 {
		t.Fatalf("partition 2: %d", got)
	}
	tr.Restore(3, 50, now)
	if got := tr.PartitionWatermark(3); got != 44 {
		t.Fatalf("restored partition: %d", got)
	}
}
