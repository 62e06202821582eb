package pipeline

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

// Late records go to the window's side output. Event times are built with
// an expression: records 0..299 are one second apart (so the source's
// watermark jumps forward after record 256, see connectors/datagen), and
// records 300..399 fall into the first window, long closed: every one of
// them is late and arrives, unchanged, at the sink reading "win.late";
// the on-time windows are exact.
func TestLateSideOutput(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 2})
	dir := t.TempDir()
	onTime, late := filepath.Join(dir, "on-time"), filepath.Join(dir, "late")
	id := c.Submit(t, spec(`name: late
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: 400}
      event_time:
        field: "id < 300 ? {{t0}} + id * 1000 : {{t0}} + (id - 300) * 10"
  - name: by-parity
    key_by: {expr: id % 2, as: parity}
  - name: win
    window:
      tumbling: 10s
      late: side_output
      aggregates: {n: count(), first: min(id)}
  - name: on-time
    sink: {file: {path: {{onTime}}}}
  - name: late-sink
    inputs: [win.late]
    sink: {file: {path: {{late}}}}
`, "{{t0}}", fmt.Sprint(t0), "{{onTime}}", onTime, "{{late}}", late))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)

	var wantOnTime, wantLate []string
	for w := int64(0); w < 30; w++ {
		for p := int64(0); p < 2; p++ {
			wantOnTime = append(wantOnTime, line(map[string]any{"parity": p, "window_start": t0 + w*10000,
				"window_end": t0 + w*10000 + 10000, "n": int64(5), "first": w*10 + p}))
		}
	}
	for n := int64(300); n < 400; n++ {
		wantLate = append(wantLate, line(map[string]any{"id": n, "ts": t0 + n}))
	}
	sameLines(t, "on-time windows\n"+cluster.Describe(j), readLines(t, onTime), wantOnTime)
	equalLines(t, "late records", readLines(t, late), wantLate)
	if v := c.JobCounter(t, "weir_job_dropped_late_total", id, "win"); v != 0 {
		t.Errorf("%v late records counted as dropped with late: side_output", v)
	}
}

// allowed_lateness: records 300..309 arrive after their window (20) fired
// but within the lateness, so each one fires the window again with the
// updated result; records 310..319 are beyond the lateness of window 0 and
// go to the side output, or with late: drop are counted as dropped.
func TestAllowedLateness(t *testing.T) {
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 3})
	for _, mode := range []string{"side_output", "drop"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			onTime, late := filepath.Join(dir, "on-time"), filepath.Join(dir, "late")
			lateSink := ""
			if mode == "side_output" {
				lateSink = spec(`
  - name: late-sink
    inputs: [win.late]
    sink: {file: {path: {{late}}}}`, "{{late}}", late)
			}
			id := c.Submit(t, spec(`name: lateness
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: 320}
      event_time:
        field: "id < 300 ? {{t0}} + id * 1000 : id < 310 ? {{t0}} + 200000 + (id - 300) * 100 : {{t0}} + id"
  - name: by-parity
    key_by: {expr: id % 2, as: parity}
  - name: win
    window:
      tumbling: 10s
      allowed_lateness: 100s
      late: {{mode}}
      aggregates: {n: count(), last: max(id)}
  - name: on-time
    inputs: [win]
    sink: {file: {path: {{onTime}}}}{{lateSink}}
`, "{{t0}}", fmt.Sprint(t0), "{{onTime}}", onTime, "{{mode}}", mode, "{{lateSink}}", lateSink))
			j := c.WaitState(t, id, "FINISHED", 30*time.Second)
			res := func(w, p, n, last int64) string {
				return line(map[string]any{"parity": p, "window_start": t0 + w*10000, "window_end": t0 + w*10000 + 10000, "n": n, "last": last})
			}
			var want []string
			for w := int64(0); w < 30; w++ {
				for p := int64(0); p < 2; p++ {
					want = append(want, res(w, p, 5, w*10+8+p))
				}
			}
			for id := int64(300); id < 310; id++ {
				p := id % 2
				want = append(want, res(20, p, 5+(id-300)/2+1, id))
			}
			sameLines(t, "window results\n"+cluster.Describe(j), readLines(t, onTime), want)
			if mode == "side_output" {
				var wantLate []string
				for n := int64(310); n < 320; n++ {
					wantLate = append(wantLate, line(map[string]any{"id": n, "ts": t0 + n}))
				}
				equalLines(t, "late records", readLines(t, late), wantLate)
				return
			}
			if v := c.JobCounter(t, "weir_job_dropped_late_total", id, "win"); v != 10 {
				t.Errorf("dropped %v late records, want 10", v)
			}
		})
	}
}
