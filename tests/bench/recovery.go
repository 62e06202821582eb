package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
)

// Recovery job settings, printed with the figures.
const (
	recoveryRestart   = "{strategy: fixed, attempts: 1000, delay: 0s}"
	recoveryRate      = 5000
	recoveryWatermark = "10ms"
	recoverySlots     = 4
)

// recoverySpec is datagen → key_by → window → Kafka: 5,000 records/s whose
// event time runs 5 s per wall second, counted per 100 ms of event time over
// 10 keys, so a watermark every 10 ms fires windows and the sink writes
// about 500 records/s. After a restore the windows restored from the
// checkpoint fire at the first watermark, so the first output after the
// restore shows when processing is back, not when a long window closes.
func recoverySpec(storage, brokers, topic string) string {
	return fmt.Sprintf(`name: recovery-bench
parallelism: 2
checkpoint: {interval: 1s, storage: %q}
restart: %s
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, rate: %d}
      event_time: {field: ts, watermark_interval: %s}
  - name: by-key
    key_by: {expr: "id %% 10", as: k}
  - name: win
    window:
      tumbling: 100ms
      aggregates:
        count: count()
  - name: out
    sink:
      kafka: {brokers: [%q], topic: %s, format: json}
`, storage, recoveryRestart, recoveryRate, recoveryWatermark, brokers, topic)
}

// recoverySample is one kill and what followed, in seconds after the kill.
type recoverySample struct {
	firstWritten, firstArrived                    float64
	detected, cancelled, scheduled, restored, run float64
	restoredFrom                                  int64
}

// benchRecovery SIGKILLs the worker that runs the whole job -kills times
// and measures from the kill to the first output record written by the
// restored job. The benchmark worker is stopped first, and each job attempt
// runs alone on one worker: a spare worker is started only after the job is
// placed, so the kill takes down every subtask at once and the restarted job
// lands on the spare. No record written after the kill can then come from
// the old attempt.
func (e *env) benchRecovery() error {
	ctx := context.Background()
	stopProc(e.worker)
	if err := poll(30*time.Second, func() (bool, error) {
		ws, err := e.api.Workers(ctx)
		return err == nil && len(ws) == 0, err
	}); err != nil {
		return fmt.Errorf("recovery: waiting for the benchmark worker to leave: %w", err)
	}
	const topic = "recovery-out"
	out, err := watchOutput(e.kafka, topic)
	if err != nil {
		return err
	}
	defer out.close()

	victim, err := e.startWorker("rec-0", recoverySlots)
	if err != nil {
		return err
	}
	id, err := e.api.Submit(ctx, []byte(recoverySpec(e.checkpointStorage(), e.kafka, topic)))
	if err != nil {
		return err
	}
	defer func() { _ = e.api.Cancel(ctx, id) }()

	var samples []recoverySample
	for k := 0; k < *kills; k++ {
		victimID := fmt.Sprintf("rec-%d", k)
		attempt, err := e.waitSteady(ctx, id, victimID, out)
		if err != nil {
			return fmt.Errorf("recovery kill %d: %w", k, err)
		}
		spare, err := e.startWorker(fmt.Sprintf("rec-%d", k+1), recoverySlots)
		if err != nil {
			return err
		}
		// Kill at a different phase of the checkpoint interval each time
		// (0, 200, … 800 ms after a checkpoint completed), so that the
		// replay from the checkpoint is sampled over the interval too.
		cps, err := e.api.Checkpoints(ctx, id)
		if err != nil {
			return err
		}
		if cps.Latest != nil && cps.Latest.EndTime != nil {
			at := cps.Latest.EndTime.Add(time.Duration(k%5) * 200 * time.Millisecond)
			if d := time.Until(at); d > 0 {
				time.Sleep(d) // a chosen moment, not a condition
			}
		}
		killed := time.Now()
		if err := kill(victim); err != nil {
			return err
		}
		var first outputRecord
		if err := poll(time.Minute, func() (bool, error) {
			var ok bool
			first, ok = out.firstWrittenAfter(killed)
			return ok, nil
		}); err != nil {
			return fmt.Errorf("recovery kill %d: no output after the kill: %w", k, err)
		}
		var rec api.Restart
		if err := poll(time.Minute, func() (bool, error) {
			rs, err := e.api.Restarts(ctx, id)
			if err != nil {
				return false, err
			}
			for _, r := range rs.Restarts {
				if r.FailedAttempt == attempt {
					if r.GaveUp {
						return false, fmt.Errorf("job gave up: %s", r.Cause)
					}
					rec = r
					return r.RunningAt != nil, nil
				}
			}
			return false, nil
		}); err != nil {
			return fmt.Errorf("recovery kill %d: restart record: %w", k, err)
		}
		s := recoverySample{
			firstWritten: first.written.Sub(killed).Seconds(),
			firstArrived: first.arrived.Sub(killed).Seconds(),
			detected:     rec.DetectedAt.Sub(killed).Seconds(),
			cancelled:    since(rec.CancelledAt, killed),
			scheduled:    since(rec.ScheduledAt, killed),
			restored:     since(rec.RestoredAt, killed),
			run:          since(rec.RunningAt, killed),
			restoredFrom: rec.RestoredFrom,
		}
		samples = append(samples, s)
		fmt.Printf("bench: kill %d of %s: detected %+.3fs cancelled %+.3fs scheduled %+.3fs restored %+.3fs (from checkpoint %d) first output written %+.3fs, read %+.3fs, running (first checkpoint) %+.3fs\n",
			k+1, victimID, s.detected, s.cancelled, s.scheduled, s.restored, s.restoredFrom, s.firstWritten, s.firstArrived, s.run)
		victim = spare
	}

	if len(samples) == 0 {
		return nil
	}
	col := func(f func(recoverySample) float64) []float64 {
		xs := make([]float64, len(samples))
		for i, s := range samples {
			xs[i] = f(s)
		}
		return xs
	}
	written := col(func(s recoverySample) float64 { return s.firstWritten })
	fmt.Printf("bench: recovery job: datagen %d records/s, parallelism 2, 1s checkpoints, restart %s, coordinator heartbeat timeout 5s (default; not waited for: a killed worker's session stream breaks at once), %d kills\n",
		recoveryRate, recoveryRestart, len(samples))
	fmt.Printf("BENCH recovery_median_s %.3f s\n", median(written))
	fmt.Printf("BENCH recovery_max_s %.3f s\n", slices.Max(written))
	fmt.Printf("BENCH recovery_output_read_median_s %.3f s\n", median(col(func(s recoverySample) float64 { return s.firstArrived })))
	fmt.Printf("BENCH recovery_detect_median_s %.3f s\n", median(col(func(s recoverySample) float64 { return s.detected })))
	fmt.Printf("BENCH recovery_cancel_median_s %.3f s\n", median(col(func(s recoverySample) float64 { return s.cancelled - s.detected })))
	fmt.Printf("BENCH recovery_schedule_median_s %.3f s\n", median(col(func(s recoverySample) float64 { return s.scheduled - s.cancelled })))
	fmt.Printf("BENCH recovery_restore_median_s %.3f s\n", median(col(func(s recoverySample) float64 { return s.restored - s.scheduled })))
	fmt.Printf("BENCH recovery_restored_to_output_median_s %.3f s\n", median(col(func(s recoverySample) float64 { return s.firstWritten - s.restored })))
	fmt.Printf("BENCH recovery_running_median_s %.3f s\n", median(col(func(s recoverySample) float64 { return s.run })))
	return nil
}

// waitSteady waits until the job runs every subtask on worker, has
// completed a checkpoint in its current attempt and writes output, and
// returns the attempt.
func (e *env) waitSteady(ctx context.Context, id, worker string, out *outputWatcher) (int64, error) {
	var attempt int64
	err := poll(time.Minute, func() (bool, error) {
		j, err := e.api.Job(ctx, id)
		if err != nil {
			return false, err
		}
		if j.State == "FAILED" || j.State == "CANCELLED" || j.State == "FINISHED" {
			return false, fmt.Errorf("job %s %s: %s", id, j.State, j.FailureCause)
		}
		if j.State != "RUNNING" {
			return false, nil
		}
		for _, v := range j.Vertices {
			for _, s := range v.Subtasks {
				if s.State != "RUNNING" {
					return false, nil
				}
				if s.Worker != worker {
					return false, fmt.Errorf("subtask %s/%d runs on %s, not on %s alone", v.ID, s.Index, s.Worker, worker)
				}
			}
		}
		cps, err := e.api.Checkpoints(ctx, id)
		if err != nil {
			return false, err
		}
		if cps.Latest == nil || cps.Latest.Attempt != j.Attempt {
			return false, nil
		}
		if _, ok := out.firstWrittenAfter(time.Now().Add(-200 * time.Millisecond)); !ok {
			return false, nil
		}
		attempt = j.Attempt
		return true, nil
	})
	return attempt, err
}

// kill SIGKILLs a process and reaps it.
func kill(c *exec.Cmd) error {
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = c.Wait()
	return nil
}

// since is t − base in seconds, or NaN when t is unset.
func since(t *time.Time, base time.Time) float64 {
	if t == nil {
		return math.NaN()
	}
	return t.Sub(base).Seconds()
}
