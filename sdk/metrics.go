package sdk

import (
	"fmt"

	"github.com/weir-stream/weir/dataflow"
)

// Metrics defines a function's metrics. They are exported on the worker's
// /metrics as weir_user_<name> with the labels job, vertex, subtask and
// node (docs/metrics.md). Define them in Open.
type Metrics struct{ c *core }

// Counter is a value that only goes up.
type Counter struct{ m *dataflow.UserMetric }

// Gauge is a value that goes up and down.
type Gauge struct{ m *dataflow.UserMetric }

// Histogram counts observations in buckets.
type Histogram struct{ m *dataflow.UserMetric }

// DefaultBuckets are a Histogram's buckets when none are given.
var DefaultBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func (m *Metrics) define(name, help string, kind dataflow.MetricKind, buckets []float64) *dataflow.UserMetric {
	if !metricNameOK(name) {
		// Open fails with this after the function's Open returns, so a
		// bad name is found on the first run, without a panic.
		if m.c.openErr == nil {
			m.c.openErr = fmt.Errorf("sdk: metric name %q: want lower-case letters, digits and '_', starting with a letter", name)
		}
		return &dataflow.UserMetric{Kind: kind}
	}
	return m.c.metrics.Define(m.c.node, name, help, kind, buckets)
}

func metricNameOK(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Counter returns the counter name (exported as weir_user_<name>).
func (m *Metrics) Counter(name, help string) *Counter {
	return &Counter{m.define(name, help, dataflow.MetricCounter, nil)}
}

// Gauge returns the gauge name.
func (m *Metrics) Gauge(name, help string) *Gauge {
	return &Gauge{m.define(name, help, dataflow.MetricGauge, nil)}
}

// Histogram returns the histogram name with the given bucket upper bounds
// (DefaultBuckets when none).
func (m *Metrics) Histogram(name, help string, buckets ...float64) *Histogram {
	if len(buckets) == 0 {
		buckets = DefaultBuckets
	}
	return &Histogram{m.define(name, help, dataflow.MetricHistogram, buckets)}
}

// Inc adds one.
func (c *Counter) Inc() { c.m.Add(1) }

// Add adds d, which must not be negative.
func (c *Counter) Add(d float64) {
	if d > 0 {
		c.m.Add(d)
	}
}

// Set sets the gauge.
func (g *Gauge) Set(v float64) { g.m.Set(v) }

// Add adds d (negative to subtract).
func (g *Gauge) Add(d float64) { g.m.Add(d) }

// Observe records one observation.
func (h *Histogram) Observe(v float64) { h.m.Observe(v) }
