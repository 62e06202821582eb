package dataflow

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// MetricKind is the type of a user metric.
type MetricKind uint8

// User metric kinds.
const (
	MetricCounter MetricKind = iota + 1
	MetricGauge
	MetricHistogram
)

// UserMetric is one metric an operator defined (through the SDK), read by
// the worker's /metrics from another goroutine.
type UserMetric struct {
	Node    string // the operator's node
	Name    string // without the weir_user_ prefix
	Help    string
	Kind    MetricKind
	Buckets []float64 // histograms: upper bounds, ascending

	bits   atomic.Uint64 // counter or gauge value, or histogram sum (float64 bits)
	count  atomic.Uint64 // histogram observations
	counts []atomic.Uint64
}

// Add adds d to a counter or gauge.
func (m *UserMetric) Add(d float64) {
	for {
		old := m.bits.Load()
		if m.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Set sets a gauge.
func (m *UserMetric) Set(v float64) { m.bits.Store(math.Float64bits(v)) }

// Value is a counter's or gauge's value.
func (m *UserMetric) Value() float64 { return math.Float64frombits(m.bits.Load()) }

// Observe adds an observation to a histogram.
func (m *UserMetric) Observe(v float64) {
	i, _ := slices.BinarySearch(m.Buckets, v)
	if i < len(m.counts) {
		m.counts[i].Add(1)
	}
	m.count.Add(1)
	m.Add(v)
}

// Histogram returns a histogram's observation count, sum and cumulative
// counts per bucket.
func (m *UserMetric) Histogram() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(m.Buckets))
	var cum uint64
	for i, b := range m.Buckets {
		cum += m.counts[i].Load()
		buckets[b] = cum
	}
	return m.count.Load(), m.Value(), buckets
}

// StateMetricPrefix starts the names of the gauges the SDK defines for an
// operator's keyed state; the worker exports them as weir_keyed_state_*
// rather than weir_user_*. User metric names cannot start with it.
const StateMetricPrefix = "\x00state_"

// UserMetrics are a task's user metrics. The zero value is ready.
type UserMetrics struct {
	mu      sync.Mutex
	metrics []*UserMetric
}

// Define returns the metric of node with name, creating it; a name
// defined again with the same kind returns the first.
func (u *UserMetrics) Define(node, name, help string, kind MetricKind, buckets []float64) *UserMetric {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, m := range u.metrics {
		if m.Node == node && m.Name == name && m.Kind == kind {
			return m
		}
	}
	m := &UserMetric{Node: node, Name: name, Help: help, Kind: kind}
	if kind == MetricHistogram {
		m.Buckets = slices.Clone(buckets)
		slices.Sort(m.Buckets)
		m.Buckets = slices.Compact(m.Buckets)
		m.counts = make([]atomic.Uint64, len(m.Buckets))
	}
	u.metrics = append(u.metrics, m)
	return m
}

// All returns the metrics defined so far.
func (u *UserMetrics) All() []*UserMetric {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.metrics)
}
