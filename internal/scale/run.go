package scale

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
)

// Size is one cluster and workload: Workers light workers with Slots slots
// each, and Jobs jobs of two vertices at Parallelism, 2·Jobs·Parallelism
// subtasks in all.
type Size struct {
	Workers, Slots    int
	Jobs, Parallelism int
}

// Subtasks is the number of subtasks over all jobs.
func (s Size) Subtasks() int { return 2 * s.Jobs * s.Parallelism }

func (s Size) String() string {
	return fmt.Sprintf("%d workers, %d jobs, %d subtasks", s.Workers, s.Jobs, s.Subtasks())
}

// Config is one measurement run.
type Config struct {
	Size
	// GRPCAddr is the coordinator's control-plane address; Client its REST
	// API.
	GRPCAddr string
	Client   *api.Client
	// Storage is the jobs' checkpoint storage URI.
	Storage string
	// Idle is how long heartbeats are counted with nothing else going on
	// (default 3s), and Baseline how long the coordinator's CPU is
	// measured with not even heartbeats (default 1s): what it spends then
	// (its ticks) is taken off the heartbeats' and checkpoints' CPU. The
	// coordinator's heartbeat timeout must exceed Baseline and the
	// checkpoint phase, which run without heartbeats.
	Idle, Baseline time.Duration
	// Checkpoints each job completes in the checkpoint phase (default 5).
	Checkpoints int
	// Interval between a job's checkpoints (default 50ms).
	Interval time.Duration
	// CPU returns the coordinator's CPU seconds so far; nil skips the CPU
	// figures (an in-process coordinator shares its process).
	CPU func() float64
	// Timeout bounds each phase (default 2m).
	Timeout time.Duration
}

// Result is what one run measured.
type Result struct {
	Size
	// Deploy is from the first submit until the coordinator reports every
	// job RUNNING; DeployCPU the coordinator's CPU seconds meanwhile.
	Deploy    time.Duration
	DeployCPU float64
	// BaselineCPU is the coordinator's CPU seconds per second with
	// nothing to do but its ticks.
	BaselineCPU float64
	// Heartbeats sent in the idle phase, and the coordinator's CPU seconds
	// per heartbeat beyond the baseline.
	Heartbeats      int64
	CPUPerHeartbeat float64
	// Checkpoints completed in the checkpoint phase, and the coordinator's
	// CPU seconds per checkpoint beyond the baseline (no heartbeats are
	// sent meanwhile).
	Checkpoints      int
	CPUPerCheckpoint float64
	// CheckpointSpan is the median over the phase's checkpoints of first
	// trigger received → last subtask notified, as the workers see it;
	// CheckpointOverhead the median of what of it came after the last
	// acknowledgement was sent (the slowest subtask's part is before).
	CheckpointSpan, CheckpointOverhead time.Duration
}

// Run deploys the jobs onto a fresh fleet, measures, cancels the jobs and
// stops the fleet.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Idle <= 0 {
		cfg.Idle = 3 * time.Second
	}
	if cfg.Baseline <= 0 {
		cfg.Baseline = time.Second
	}
	if cfg.Checkpoints <= 0 {
		cfg.Checkpoints = 5
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Workers*cfg.Slots < cfg.Jobs*cfg.Parallelism {
		return nil, fmt.Errorf("scale: %s need %d slots, %d workers × %d slots offer %d",
			cfg.Size, cfg.Jobs*cfg.Parallelism, cfg.Workers, cfg.Slots, cfg.Workers*cfg.Slots)
	}
	cpu := cfg.CPU
	if cpu == nil {
		cpu = func() float64 { return 0 }
	}
	phase := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, cfg.Timeout) }

	pctx, cancel := phase()
	f, err := StartFleet(pctx, cfg.GRPCAddr, cfg.Workers, cfg.Slots)
	cancel()
	if err != nil {
		return nil, err
	}
	defer f.Stop()
	res := &Result{Size: cfg.Size}

	// Deploy, with acknowledgements held so that each job's first
	// checkpoint stays in flight through the idle phase.
	f.Hold()
	cpu0, start := cpu(), time.Now()
	ids := make([]string, 0, cfg.Jobs)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
		defer cancel()
		for _, id := range ids {
			_ = cfg.Client.Cancel(cctx, id)
		}
	}()
	for i := range cfg.Jobs {
		id, err := cfg.Client.Submit(ctx, []byte(JobSpec(fmt.Sprintf("scale-%d", i), cfg.Parallelism, cfg.Interval, cfg.Storage)))
		if err != nil {
			return nil, fmt.Errorf("scale: submit job %d: %w", i, err)
		}
		ids = append(ids, id)
	}
	pctx, cancel = phase()
	defer cancel()
	if err := f.wait(pctx, func() bool { return f.running >= cfg.Subtasks() }); err != nil {
		return nil, fmt.Errorf("scale: %d of %d subtasks RUNNING: %w", f.Running(), cfg.Subtasks(), err)
	}
	if err := waitRunning(pctx, cfg.Client, ids); err != nil {
		return nil, err
	}
	res.Deploy, res.DeployCPU = time.Since(start), cpu()-cpu0

	// Idle: every job's first checkpoint is in flight and held, so nothing
	// but heartbeats and ticks reaches the coordinator.
	if err := f.wait(pctx, func() bool { return len(f.held) >= cfg.Jobs }); err != nil {
		return nil, fmt.Errorf("scale: waiting for the first trigger of every job: %w", err)
	}
	// Measurement windows, not synchronisation.
	window := func(d time.Duration) (cpuSeconds float64, took time.Duration, err error) {
		cpu0, t0 := cpu(), time.Now()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		return cpu() - cpu0, time.Since(t0), nil
	}
	f.Quiet(true)
	baseCPU, baseFor, err := window(cfg.Baseline)
	f.Quiet(false)
	if err != nil {
		return nil, err
	}
	res.BaselineCPU = baseCPU / baseFor.Seconds()
	hb0 := f.Heartbeats()
	idleCPU, idleFor, err := window(cfg.Idle)
	if err != nil {
		return nil, err
	}
	res.Heartbeats = f.Heartbeats() - hb0
	if res.Heartbeats > 0 {
		res.CPUPerHeartbeat = max(idleCPU-res.BaselineCPU*idleFor.Seconds(), 0) / float64(res.Heartbeats)
	}

	// Checkpoints: release the held ones and let every job complete
	// cfg.Checkpoints more.
	f.mu.Lock()
	base := map[string]int{}
	for k, r := range f.ckpts {
		if r.done {
			base[k.job]++
		}
	}
	f.mu.Unlock()
	f.Quiet(true)
	defer f.Quiet(false)
	cpu0, ck0 := cpu(), time.Now()
	f.Release()
	want := cfg.Checkpoints + 1 // the held one, then cfg.Checkpoints
	err = f.wait(pctx, func() bool {
		n := map[string]int{}
		for k, r := range f.ckpts {
			if r.done {
				n[k.job]++
			}
		}
		for _, id := range ids {
			if n[id]-base[id] < want {
				return false
			}
		}
		return true
	})
	ckCPU, ckFor := cpu()-cpu0, time.Since(ck0)
	if err != nil {
		return nil, fmt.Errorf("scale: waiting for %d checkpoints of every job: %w", want, err)
	}
	f.mu.Lock()
	var spans, overheads []time.Duration
	for _, r := range f.ckpts {
		if !r.done || !r.trigger.After(ck0) && !r.held {
			continue
		}
		res.Checkpoints++
		if r.held {
			continue // triggered long before its acknowledgements
		}
		spans = append(spans, r.lastNote.Sub(r.trigger))
		overheads = append(overheads, r.lastNote.Sub(r.lastAck))
	}
	f.mu.Unlock()
	if res.Checkpoints > 0 {
		res.CPUPerCheckpoint = max(ckCPU-res.BaselineCPU*ckFor.Seconds(), 0) / float64(res.Checkpoints)
	}
	res.CheckpointSpan, res.CheckpointOverhead = medianDuration(spans), medianDuration(overheads)
	return res, nil
}

// waitRunning polls the REST API until every job is RUNNING.
func waitRunning(ctx context.Context, c *api.Client, ids []string) error {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for {
		js, err := c.Jobs(ctx)
		if err == nil {
			n := 0
			for _, j := range js {
				if !want[j.ID] {
					continue
				}
				switch j.State {
				case "RUNNING":
					n++
				case "FAILED", "CANCELLED", "FINISHED":
					return fmt.Errorf("scale: job %s is %s", j.ID, j.State)
				}
			}
			if n == len(ids) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("scale: jobs not all RUNNING: %w", ctx.Err()), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// JobSpec is a job of two vertices at parallelism p (a datagen source, then
// a keyed window and a discard sink) with checkpoints every interval into
// storage. Light workers never run it; the coordinator plans and tracks it
// as any job.
func JobSpec(name string, p int, interval time.Duration, storage string) string {
	return fmt.Sprintf(`name: %s
parallelism: %d
max_parallelism: %d
checkpoint: {interval: %s, storage: %q}
pipeline:
  - name: gen
    source:
      datagen: {profile: access-log, seed: 1}
      event_time: {field: ts, max_out_of_orderness: 5s}
  - name: by-ip
    key_by: ip
  - name: per-minute
    window:
      tumbling: 1m
      aggregates:
        count: count()
  - name: out
    sink:
      discard: {}
`, name, p, max(p, 128), interval, storage)
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
