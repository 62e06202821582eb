package worker

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-stream/weir/dataflow"
)

// userCollector exports the metrics user operators define (package sdk)
// as weir_user_<name>, and the SDK operators' keyed state sizes as
// weir_keyed_state_<name>, with the labels job, vertex, subtask and node
// (docs/metrics.md). Names are only known at run time, so it is an
// unchecked collector (Describe sends nothing).
type userCollector struct{ w *Worker }

var userLabels = []string{"job", "vertex", "subtask", "node"}

func (userCollector) Describe(chan<- *prometheus.Desc) {}

func (k userCollector) Collect(ch chan<- prometheus.Metric) {
	type series struct{ name, job, vertex, sub, node string }
	type task struct {
		job, vertex, sub string
		counters         *dataflow.Counters
	}
	k.w.mu.Lock()
	tasks := make([]task, 0, len(k.w.tasks))
	for _, t := range k.w.tasks {
		tasks = append(tasks, task{t.key.job, t.key.vertex, strconv.Itoa(int(t.key.subtask)), t.counters})
	}
	k.w.mu.Unlock()
	descs := map[string]*prometheus.Desc{} // one help text per name, as Prometheus wants
	seen := map[series]bool{}
	for _, t := range tasks {
		for _, m := range t.counters.User.All() {
			name := "weir_user_" + m.Name
			if rest, ok := strings.CutPrefix(m.Name, dataflow.StateMetricPrefix); ok {
				name = "weir_keyed_state_" + rest
			}
			s := series{name, t.job, t.vertex, t.sub, m.Node}
			if seen[s] {
				continue // an older attempt of the same subtask
			}
			seen[s] = true
			d := descs[name]
			if d == nil {
				help := m.Help
				if help == "" {
					help = "A user operator's metric."
				}
				d = prometheus.NewDesc(name, help, userLabels, nil)
				descs[name] = d
			}
			labels := []string{t.job, t.vertex, t.sub, m.Node}
			var metric prometheus.Metric
			var err error
			switch m.Kind {
			case dataflow.MetricCounter:
				metric, err = prometheus.NewConstMetric(d, prometheus.CounterValue, m.Value(), labels...)
			case dataflow.MetricGauge:
				metric, err = prometheus.NewConstMetric(d, prometheus.GaugeValue, m.Value(), labels...)
			case dataflow.MetricHistogram:
				n, sum, buckets := m.Histogram()
				metric, err = prometheus.NewConstHistogram(d, n, sum, buckets, labels...)
			default:
				continue
			}
			if err == nil {
				ch <- metric
			}
		}
	}
}
