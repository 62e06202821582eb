package dataflow

import "sync/atomic"

// Counters are a task's running figures, read by heartbeats and /metrics
// from other goroutines.
type Counters struct {
	RecordsIn       atomic.Int64
	RecordsOut      atomic.Int64
	BackpressuredNs atomic.Int64
	DroppedLate     atomic.Int64
	SkippedInvalid  atomic.Int64
	DeadLettered    atomic.Int64
	// User holds the metrics user operators define (usermetrics.go).
	User UserMetrics
}
