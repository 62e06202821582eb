package worker

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

var (
	descSlots         = prometheus.NewDesc("weir_worker_slots", "Task slots this worker offers.", nil, nil)
	descConnected     = prometheus.NewDesc("weir_worker_connected", "1 while registered with the coordinator.", nil, nil)
	descTasks         = prometheus.NewDesc("weir_worker_tasks", "Tasks on this worker by state.", []string{"state"}, nil)
	descRecordsIn     = prometheus.NewDesc("weir_task_records_in_total", "Records read by a subtask.", []string{"job", "vertex", "subtask"}, nil)
	descRecordsOut    = prometheus.NewDesc("weir_task_records_out_total", "Records emitted by a subtask.", []string{"job", "vertex", "subtask"}, nil)
	descBackpressured = prometheus.NewDesc("weir_task_backpressured_seconds_total", "Time a subtask waited for output credit or, in a sink, on its outside system (broker, full producer buffer, transaction flush), including a wait in progress.", []string{"job", "vertex", "subtask"}, nil)
	descBusy          = prometheus.NewDesc("weir_task_busy_seconds_total", "Time a subtask spent processing: neither waiting for input (idle) nor backpressured.", []string{"job", "vertex", "subtask"}, nil)
	descIdle          = prometheus.NewDesc("weir_task_idle_seconds_total", "Time a subtask waited for input: an empty input gate, or a source waiting for its brokers or its rate limit.", []string{"job", "vertex", "subtask"}, nil)
	descWatermark     = prometheus.NewDesc("weir_task_watermark_seconds", "A running subtask's current event-time watermark, seconds since the epoch (absent before its first).", []string{"job", "vertex", "subtask"}, nil)
	descEventTimeLag  = prometheus.NewDesc("weir_task_event_time_lag_seconds", "How far a running subtask's watermark trails the worker's clock: now minus the watermark.", []string{"job", "vertex", "subtask"}, nil)
	descLinkUp        = prometheus.NewDesc("weir_task_link_connected", "1 while a source or sink of a subtask reaches its outside system (brokers), 0 while it does not.", []string{"job", "vertex", "subtask", "operator"}, nil)
	descStateBytes    = prometheus.NewDesc("weir_operator_state_bytes", "Estimated keyed-state size of a stateful operator of a subtask.", []string{"job", "vertex", "subtask", "operator"}, nil)
	descHeapLive      = prometheus.NewDesc("weir_worker_heap_live_bytes", "Live heap after the last GC (runtime/metrics /gc/heap/live:bytes).", nil, nil)
	descMemory        = prometheus.NewDesc("weir_worker_memory_bytes", "Memory the Go runtime holds from the OS (what the memory limit bounds).", nil, nil)
	descMemoryLimit   = prometheus.NewDesc("weir_worker_memory_limit_bytes", "The worker's memory limit (0: none).", nil, nil)
)

type collector struct{ w *Worker }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSlots, descConnected, descTasks, descRecordsIn, descRecordsOut, descBackpressured,
		descBusy, descIdle, descWatermark, descEventTimeLag, descLinkUp, descStateBytes, descHeapLive, descMemory, descMemoryLimit} {
		ch <- d
	}
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	w := k.w
	ch <- prometheus.MustNewConstMetric(descSlots, prometheus.GaugeValue, float64(w.cfg.Slots))
	conn := 0.0
	if w.connected.Load() {
		conn = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, conn)
	mem := readMemory(w.cfg.MemoryLimit)
	ch <- prometheus.MustNewConstMetric(descHeapLive, prometheus.GaugeValue, float64(mem.GetHeapLiveBytes()))
	ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(mem.GetTotalBytes()))
	ch <- prometheus.MustNewConstMetric(descMemoryLimit, prometheus.GaugeValue, float64(mem.GetLimitBytes()))
	w.mu.Lock()
	defer w.mu.Unlock()
	byState := map[controlpb.TaskState]int{}
	for _, t := range w.tasks {
		byState[t.state]++
		sub := strconv.Itoa(int(t.key.subtask))
		c := t.counters
		ch <- prometheus.MustNewConstMetric(descRecordsIn, prometheus.CounterValue, float64(c.RecordsIn.Load()), t.key.job, t.key.vertex, sub)
		ch <- prometheus.MustNewConstMetric(descRecordsOut, prometheus.CounterValue, float64(c.RecordsOut.Load()), t.key.job, t.key.vertex, sub)
		ch <- prometheus.MustNewConstMetric(descBackpressured, prometheus.CounterValue, c.Backpressured().Seconds(), t.key.job, t.key.vertex, sub)
		ch <- prometheus.MustNewConstMetric(descBusy, prometheus.CounterValue, c.Busy().Seconds(), t.key.job, t.key.vertex, sub)
		ch <- prometheus.MustNewConstMetric(descIdle, prometheus.CounterValue, c.Idle().Seconds(), t.key.job, t.key.vertex, sub)
		if t.ended() {
			continue
		}
		if wm, ok := c.Watermark(); ok {
			ch <- prometheus.MustNewConstMetric(descWatermark, prometheus.GaugeValue, float64(wm)/1000, t.key.job, t.key.vertex, sub)
			ch <- prometheus.MustNewConstMetric(descEventTimeLag, prometheus.GaugeValue, float64(time.Now().UnixMilli()-wm)/1000, t.key.job, t.key.vertex, sub)
		}
		for _, l := range c.Links() {
			if l.Known {
				ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, boolGauge(l.Connected), t.key.job, t.key.vertex, sub, l.Node)
			}
		}
		for _, s := range c.StateSizes() {
			ch <- prometheus.MustNewConstMetric(descStateBytes, prometheus.GaugeValue, float64(s.Bytes), t.key.job, t.key.vertex, sub, s.Node)
		}
	}
	for _, s := range []controlpb.TaskState{controlpb.TaskState_TASK_STATE_DEPLOYING, controlpb.TaskState_TASK_STATE_RUNNING,
		controlpb.TaskState_TASK_STATE_FINISHED, controlpb.TaskState_TASK_STATE_FAILED, controlpb.TaskState_TASK_STATE_CANCELED} {
		ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(byState[s]), stateName(s))
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func stateName(s controlpb.TaskState) string {
	switch s {
	case controlpb.TaskState_TASK_STATE_DEPLOYING:
		return "DEPLOYING"
	case controlpb.TaskState_TASK_STATE_RUNNING:
		return "RUNNING"
	case controlpb.TaskState_TASK_STATE_FINISHED:
		return "FINISHED"
	case controlpb.TaskState_TASK_STATE_FAILED:
		return "FAILED"
	case controlpb.TaskState_TASK_STATE_CANCELED:
		return "CANCELED"
	}
	return "UNSPECIFIED"
}
