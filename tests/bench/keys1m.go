package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
)

var (
	keysRate        = flag.Int("keys-rate", 200_000, "records per second of the 1M-keys job")
	keysCheckpoints = flag.Int("keys-checkpoints", 5, "checkpoints measured in the 1M-keys job once its state holds every key")
)

const keySpace = 1_000_000

// keys1MSpec is a job whose window state holds one entry per key of a
// 1,000,000-key space: the sequence generator's ids modulo 1M, counted in a
// 1000 h tumbling window that never fires during the benchmark. A second
// branch counts the same records per 1 s of event time over 2 keys and
// writes the counts to Kafka: a steady stream of output (every 10 ms
// watermark fires a few windows) whose gaps show how long processing stops.
// Both branches share the source, so a pause of the state task
// backpressures the source within a few credit frames and stops the tick
// branch too.
func keys1MSpec(storage, brokers, tickTopic string, rate int) string {
	return fmt.Sprintf(`name: keys-1m-bench
parallelism: 2
checkpoint: {interval: 1s, storage: %q, retained: 20}
restart: {strategy: none}
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, rate: %d}
      event_time: {field: ts, watermark_interval: 10ms}
  - name: by-key
    key_by: {expr: "id %% %d", as: k}
  - name: state
    window:
      tumbling: 1000h
      aggregates:
        count: count()
  - name: state-out
    sink:
      discard: {}
  - name: by-tick
    inputs: [gen]
    key_by: {expr: "id %% 2", as: k}
  - name: tick
    window:
      tumbling: 1s
      aggregates:
        count: count()
  - name: tick-out
    sink:
      kafka: {brokers: [%q], topic: %s, format: json}
`, storage, rate, keySpace, brokers, tickTopic)
}

func (e *env) benchKeys1M() error {
	ctx := context.Background()
	const topic = "keys-1m-tick"
	out, err := watchOutput(e.kafka, topic)
	if err != nil {
		return err
	}
	defer out.close()
	id, err := e.api.Submit(ctx, []byte(keys1MSpec(e.checkpointStorage(), e.kafka, topic, *keysRate)))
	if err != nil {
		return err
	}
	defer func() { _ = e.api.Cancel(ctx, id) }()

	// Wait until the state task has read more than the key space: then every
	// key is in the state (each subtask's ids are consecutive modulo 2).
	stateIn := func() (int64, error) {
		j, err := e.api.Job(ctx, id)
		if err != nil {
			return 0, err
		}
		if j.State == "FAILED" || j.State == "CANCELLED" || j.State == "FINISHED" {
			return 0, fmt.Errorf("1M-keys job %s %s: %s", id, j.State, j.FailureCause)
		}
		var in int64
		for _, v := range j.Vertices {
			if slices.Contains(v.Nodes, "state") {
				for _, s := range v.Subtasks {
					in += s.RecordsIn
				}
			}
		}
		return in, nil
	}
	var filled time.Time
	var filledIn int64
	err = poll(5*time.Minute, func() (bool, error) {
		in, err := stateIn()
		if err != nil {
			return false, err
		}
		if in >= keySpace*11/10 {
			filled, filledIn = time.Now(), in
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("1M-keys job: filling the state: %w", err)
	}

	// Measure the next checkpoints triggered after that.
	var measured []api.CheckpointStats
	failed := 0
	err = poll(2*time.Minute, func() (bool, error) {
		cps, err := e.api.Checkpoints(ctx, id)
		if err != nil {
			return false, err
		}
		measured, failed = measured[:0], 0
		for _, c := range cps.History {
			if c.Savepoint || !c.TriggerTime.After(filled) {
				continue
			}
			switch c.Status {
			case "COMPLETED":
				measured = append(measured, c)
			case "FAILED":
				failed++
			}
		}
		if failed > *keysCheckpoints {
			return false, fmt.Errorf("%d checkpoints failed, e.g. %s", failed, cps.History[0].Failure)
		}
		return len(measured) >= *keysCheckpoints, nil
	})
	if err != nil {
		return fmt.Errorf("1M-keys job: checkpoints: %w", err)
	}
	// The rate the state task kept up while checkpointing, against the
	// source's configured rate.
	endIn, err := stateIn()
	if err != nil {
		return err
	}
	rate := float64(endIn-filledIn) / time.Since(filled).Seconds()
	slices.SortFunc(measured, func(a, b api.CheckpointStats) int { return int(a.ID - b.ID) })
	measured = measured[:*keysCheckpoints]

	var durs, sizes []float64
	var maxSync, maxAlign, syncTotal int64
	var maxSyncAt string
	for _, c := range measured {
		durs = append(durs, float64(c.DurationMs))
		sizes = append(sizes, float64(c.SizeBytes))
		d, err := e.api.Checkpoint(ctx, id, c.ID)
		if err != nil {
			return err
		}
		var longest int64
		for _, s := range d.SubtaskStats {
			if s.SyncMs > maxSync {
				maxSync, maxSyncAt = s.SyncMs, fmt.Sprintf("%s/%d of checkpoint %d", s.Vertex, s.Subtask, c.ID)
			}
			longest = max(longest, s.SyncMs)
			maxAlign = max(maxAlign, s.AlignmentMs)
		}
		syncTotal += longest
	}

	// The keys in the last measured checkpoint, from its _metadata.
	last := measured[len(measured)-1]
	keys := int64(-1)
	if js, err := e.weir("checkpoint", "inspect", last.Location, "-o", "json"); err == nil {
		var in struct {
			Keys int64 `json:"keys"`
		}
		if json.Unmarshal([]byte(js), &in) == nil {
			keys = in.Keys
		}
	} else {
		fmt.Printf("bench: checkpoint inspect %s: %v\n", last.Location, err)
	}

	// Output gaps: the longest silence of the tick branch that overlaps a
	// measured checkpoint, and the longest outside of them.
	from, to := measured[0].TriggerTime, *last.EndTime
	ts := out.writeTimes()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var during, outside time.Duration
	for i := 1; i < len(ts); i++ {
		a, b := ts[i-1], ts[i]
		if b.Before(from) || a.After(to) {
			continue
		}
		gap := b.Sub(a)
		overlaps := false
		for _, c := range measured {
			if a.Before(*c.EndTime) && b.After(c.TriggerTime) {
				overlaps = true
				break
			}
		}
		if overlaps {
			during = max(during, gap)
		} else {
			outside = max(outside, gap)
		}
	}

	fmt.Printf("bench: 1M-keys job: datagen %d records/s, state full at %s; checkpoints %d-%d measured (%d failed); last one holds %d keys; longest synchronous snapshot %d ms (%s), longest alignment %d ms\n",
		*keysRate, filled.Format("15:04:05.000"), measured[0].ID, last.ID, failed, keys, maxSync, maxSyncAt, maxAlign)
	fmt.Printf("BENCH checkpoint_1m_keys_duration_ms %.0f ms\n", median(durs))
	fmt.Printf("BENCH checkpoint_1m_keys_records_per_s %.0f records/s\n", rate)
	fmt.Printf("BENCH checkpoint_1m_keys_size_mb %.1f MB\n", median(sizes)/1e6)
	fmt.Printf("BENCH checkpoint_1m_keys_longest_pause_ms %d ms\n", during.Milliseconds())
	if outside > 0 {
		fmt.Printf("BENCH checkpoint_1m_keys_longest_gap_without_checkpoint_ms %d ms\n", outside.Milliseconds())
	} else {
		fmt.Println("bench: no output gap outside a checkpoint to compare with: each checkpoint was triggered as soon as the previous one ended")
	}
	fmt.Printf("BENCH checkpoint_1m_keys_sync_share_pct %.0f %%\n", 100*float64(syncTotal)/float64(to.Sub(from).Milliseconds()))
	fmt.Printf("BENCH checkpoint_1m_keys_max_sync_ms %d ms\n", maxSync)
	fmt.Printf("BENCH checkpoint_1m_keys_max_alignment_ms %d ms\n", maxAlign)
	return nil
}
