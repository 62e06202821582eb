package coordinator

import (
	"context"
	"slices"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-stream/weir/coordinator/lifecycle"
)

var (
	descWorkers       = prometheus.NewDesc("weir_workers", "Registered workers.", nil, nil)
	descSlotsTotal    = prometheus.NewDesc("weir_slots_total", "Task slots over all registered workers.", nil, nil)
	descSlotsUsed     = prometheus.NewDesc("weir_slots_used", "Task slots occupied by running or deploying tasks.", nil, nil)
	descJobs          = prometheus.NewDesc("weir_jobs", "Jobs by lifecycle state.", []string{"state"}, nil)
	descJobAttempt    = prometheus.NewDesc("weir_job_attempt", "Current execution attempt of a job.", []string{"job"}, nil)
	descRecordsIn     = prometheus.NewDesc("weir_job_records_in_total", "Records read by a vertex's subtasks in the current attempt.", []string{"job", "vertex"}, nil)
	descRecordsOut    = prometheus.NewDesc("weir_job_records_out_total", "Records emitted by a vertex's subtasks in the current attempt.", []string{"job", "vertex"}, nil)
	descBackpressured = prometheus.NewDesc("weir_job_backpressured_seconds_total", "Time a vertex's subtasks waited for output credit or, in a sink, on its broker.", []string{"job", "vertex"}, nil)
	descDroppedLate   = prometheus.NewDesc("weir_job_dropped_late_total", "Late records dropped by a vertex.", []string{"job", "vertex"}, nil)
	descSkipped       = prometheus.NewDesc("weir_job_skipped_invalid_total", "Invalid records skipped by a vertex.", []string{"job", "vertex"}, nil)
	descBusy          = prometheus.NewDesc("weir_job_busy_seconds_total", "Time a vertex's subtasks spent processing, neither idle nor backpressured.", []string{"job", "vertex"}, nil)
	descIdle          = prometheus.NewDesc("weir_job_idle_seconds_total", "Time a vertex's subtasks waited for input.", []string{"job", "vertex"}, nil)
	descWatermark     = prometheus.NewDesc("weir_job_watermark_seconds", "A running vertex's event-time watermark (the least of its subtasks'), seconds since the epoch.", []string{"job", "vertex"}, nil)
	descEventTimeLag  = prometheus.NewDesc("weir_job_event_time_lag_seconds", "How far a running vertex's watermark trails the coordinator's clock.", []string{"job", "vertex"}, nil)
	descDeadLettered  = prometheus.NewDesc("weir_job_dead_lettered_total", "Records sent to a dead-letter topic by a vertex.", []string{"job", "vertex"}, nil)
	descCheckpoints   = prometheus.NewDesc("weir_job_checkpoints_total", "Checkpoints and savepoints of a job by outcome (completed, failed) since submission.", []string{"job", "status"}, nil)
	descCpInProgress  = prometheus.NewDesc("weir_job_checkpoints_in_progress", "Checkpoints of a job in flight (0 or 1).", []string{"job"}, nil)
	descCpDuration    = prometheus.NewDesc("weir_job_last_checkpoint_duration_seconds", "Trigger to commit of the latest completed checkpoint.", []string{"job"}, nil)
	descCpSize        = prometheus.NewDesc("weir_job_last_checkpoint_size_bytes", "State size of the latest completed checkpoint.", []string{"job"}, nil)
	descCpLatestID    = prometheus.NewDesc("weir_job_last_checkpoint_id", "Id of the latest completed checkpoint.", []string{"job"}, nil)
	descRestarts      = prometheus.NewDesc("weir_job_restarts_total", "Failures of a job (restarted or not).", []string{"job"}, nil)
	descCpAlignment   = prometheus.NewDesc("weir_job_last_checkpoint_alignment_seconds", "Longest barrier alignment of a subtask in the latest completed checkpoint.", []string{"job"}, nil)
	descRecovery      = prometheus.NewDesc("weir_job_last_restart_recovery_seconds", "Failure detected to every subtask running again, for the latest restart that recovered.", []string{"job"}, nil)
	descSourceLag     = prometheus.NewDesc("weir_job_source_lag_records", "Records of a Kafka source partition between the latest completed checkpoint's position and the partition's end (running jobs).", []string{"job", "vertex", "topic", "partition"}, nil)
)

// collector reads the coordinator's state at scrape time, so /metrics never
// disagrees with the REST API.
type collector struct{ c *Coordinator }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkers, descSlotsTotal, descSlotsUsed, descJobs, descJobAttempt,
		descRecordsIn, descRecordsOut, descBackpressured, descDroppedLate, descSkipped, descDeadLettered,
		descBusy, descIdle, descWatermark, descEventTimeLag,
		descCheckpoints, descCpInProgress, descCpDuration, descCpSize, descCpLatestID, descRestarts,
		descCpAlignment, descRecovery, descSourceLag} {
		ch <- d
	}
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	c := k.c
	lags := k.collectLocked(ch)
	// Lag asks the brokers: never under the coordinator's lock.
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	for _, in := range lags {
		l := c.computeLag(ctx, in)
		if l.Basis != "checkpoint" {
			continue
		}
		for _, s := range l.Sources {
			for _, p := range s.Partitions {
				if p.Lag != nil {
					ch <- prometheus.MustNewConstMetric(descSourceLag, prometheus.GaugeValue, float64(*p.Lag),
						in.job, s.Vertex, s.Topic, strconv.Itoa(int(p.Partition)))
				}
			}
		}
	}
}

// collectLocked sends every metric read from the coordinator's state and
// returns what the lag of the running jobs' Kafka sources needs.
func (k collector) collectLocked(ch chan<- prometheus.Metric) []lagInput {
	c := k.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var lags []lagInput
	total, used := 0, 0
	for _, w := range c.workersLocked() {
		total += w.Slots
		used += w.SlotsUsed
	}
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(len(c.workers)))
	ch <- prometheus.MustNewConstMetric(descSlotsTotal, prometheus.GaugeValue, float64(total))
	ch <- prometheus.MustNewConstMetric(descSlotsUsed, prometheus.GaugeValue, float64(used))
	byState := map[lifecycle.State]int{}
	for _, j := range c.jobs {
		byState[j.m.State]++
	}
	for _, s := range lifecycle.States {
		ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(byState[s]), string(s))
	}
	ids := append([]string(nil), c.order...)
	sort.Strings(ids)
	for _, id := range ids {
		m := c.jobs[id].m
		ch <- prometheus.MustNewConstMetric(descJobAttempt, prometheus.GaugeValue, float64(m.Attempt), id)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(len(m.Restarts)), id)
		if cp := c.jobs[id].cp; cp != nil {
			n := cp.Counts()
			ch <- prometheus.MustNewConstMetric(descCheckpoints, prometheus.CounterValue, float64(n.Completed), id, "completed")
			ch <- prometheus.MustNewConstMetric(descCheckpoints, prometheus.CounterValue, float64(n.Failed), id, "failed")
			ch <- prometheus.MustNewConstMetric(descCpInProgress, prometheus.GaugeValue, float64(n.InProgress), id)
			if l := cp.Latest(); l != nil {
				ch <- prometheus.MustNewConstMetric(descCpDuration, prometheus.GaugeValue, l.Duration().Seconds(), id)
				ch <- prometheus.MustNewConstMetric(descCpSize, prometheus.GaugeValue, float64(l.Size), id)
				ch <- prometheus.MustNewConstMetric(descCpLatestID, prometheus.GaugeValue, float64(l.ID), id)
				ch <- prometheus.MustNewConstMetric(descCpAlignment, prometheus.GaugeValue, float64(l.MaxAlignmentMs())/1000, id)
			}
		}
		for _, r := range slices.Backward(m.Restarts) {
			if !r.RestoredAt.IsZero() {
				ch <- prometheus.MustNewConstMetric(descRecovery, prometheus.GaugeValue, r.RestoredAt.Sub(r.DetectedAt).Seconds(), id)
				break
			}
		}
		if m.State == lifecycle.Running {
			if in := c.lagInputLocked(c.jobs[id]); len(in.sources) > 0 && in.cpID > 0 {
				lags = append(lags, in)
			}
		}
		for _, v := range m.Vertices {
			var sum lifecycle.Metrics
			var tasks []*lifecycle.Task
			for _, t := range m.Tasks {
				if t.Key.Vertex == v.ID {
					tasks = append(tasks, t)
					sum.BusyMs += t.Metrics.BusyMs
					sum.IdleMs += t.Metrics.IdleMs
					sum.RecordsIn += t.Metrics.RecordsIn
					sum.RecordsOut += t.Metrics.RecordsOut
					sum.BackpressuredMs += t.Metrics.BackpressuredMs
					sum.DroppedLate += t.Metrics.DroppedLate
					sum.SkippedInvalid += t.Metrics.SkippedInvalid
					sum.DeadLettered += t.Metrics.DeadLettered
				}
			}
			ch <- prometheus.MustNewConstMetric(descRecordsIn, prometheus.CounterValue, float64(sum.RecordsIn), id, v.ID)
			ch <- prometheus.MustNewConstMetric(descRecordsOut, prometheus.CounterValue, float64(sum.RecordsOut), id, v.ID)
			ch <- prometheus.MustNewConstMetric(descBackpressured, prometheus.CounterValue, float64(sum.BackpressuredMs)/1000, id, v.ID)
			ch <- prometheus.MustNewConstMetric(descDroppedLate, prometheus.CounterValue, float64(sum.DroppedLate), id, v.ID)
			ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(sum.SkippedInvalid), id, v.ID)
			ch <- prometheus.MustNewConstMetric(descDeadLettered, prometheus.CounterValue, float64(sum.DeadLettered), id, v.ID)
			ch <- prometheus.MustNewConstMetric(descBusy, prometheus.CounterValue, float64(sum.BusyMs)/1000, id, v.ID)
			ch <- prometheus.MustNewConstMetric(descIdle, prometheus.CounterValue, float64(sum.IdleMs)/1000, id, v.ID)
			if wm, ok := vertexWatermark(tasks); ok && m.State == lifecycle.Running {
				ch <- prometheus.MustNewConstMetric(descWatermark, prometheus.GaugeValue, float64(wm)/1000, id, v.ID)
				ch <- prometheus.MustNewConstMetric(descEventTimeLag, prometheus.GaugeValue, float64(c.cfg.Clock.Now().UnixMilli()-wm)/1000, id, v.ID)
			}
		}
	}
	return lags
}
