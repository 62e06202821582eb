// Package filesink proves the file sink exactly once end to end with real
// weir processes: a bounded datagen job with checkpoints writes a directory
// of part files while workers running the sink are SIGKILLed and one is
// SIGSTOPped past the heartbeat timeout and woken after the job restarted
// without it (a zombie of an older attempt). The committed output must hold
// every id exactly once, in whole lines.
package filesink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

const (
	// events at rate per second keep the job running for about 40s, longer
	// than the faults take (the rate is an upper bound: a slow machine only
	// stretches the run).
	events = 100_000
	rate   = 2_500
)

// TestFileSinkExactlyOnceWithKillsAndZombie runs gen -> key_by -> file sink
// at parallelism 2 with a checkpoint every 300ms on three workers. It
// SIGKILLs a worker running the sink twice (each after a checkpoint of the
// current attempt completed, starting a replacement), then SIGSTOPs one
// past the heartbeat timeout (5s), waits until the job runs again in a new
// attempt with a completed checkpoint, and SIGCONTs it. When the job has
// finished, the visible files must hold ids 0..events-1 exactly once, each
// in a whole JSON line. Before part files (one appended file per subtask
// flushed when its buffer filled), runs lost the ids of completed
// checkpoints after a SIGKILL and the zombie wrote stale records and torn
// lines into the file the new attempt was writing.
func TestFileSinkExactlyOnceWithKillsAndZombie(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	began := time.Now()
	c := proc.StartCluster(t, proc.Binary(t), 3, 2)
	out := filepath.Join(c.Allowed, "out") // file sinks only under --allowed-paths
	spec := filepath.Join(t.TempDir(), "job.yaml")
	job := fmt.Sprintf(`name: filesink-eos
parallelism: 2
checkpoint: {interval: 300ms}
restart: {strategy: fixed, attempts: 20, delay: 500ms}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, count: %d, rate: %d}}
  - name: by-id
    key_by: id
  - name: out
    sink: {file: {path: %s}}
`, events, rate, out)
	if err := os.WriteFile(spec, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	id := c.Submit(spec)
	c.WaitRunning(id, 1, 60*time.Second)
	next := 4

	for k := 1; k <= 2; k++ {
		j := c.Job(id)
		chk := twoCheckpoints(c, id, j.Attempt)
		victim := sinkWorker(c, id)
		t.Logf("kill %d at +%s: SIGKILL %s in attempt %d (checkpoint %d completed)",
			k, time.Since(began).Round(time.Millisecond), victim, j.Attempt, chk.ID)
		c.Workers[victim].Kill()
		c.StartWorker(fmt.Sprintf("worker-%d", next), 2, nil)
		next++
		c.WaitRunning(id, j.Attempt+1, 60*time.Second)
	}

	j := c.Job(id)
	chk := twoCheckpoints(c, id, j.Attempt)
	victim := sinkWorker(c, id)
	zombie := c.Workers[victim]
	t.Logf("SIGSTOP %s at +%s in attempt %d (checkpoint %d completed)",
		victim, time.Since(began).Round(time.Millisecond), j.Attempt, chk.ID)
	if err := zombie.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = zombie.Signal(syscall.SIGCONT)
		}
	}()
	// The coordinator declares it lost after the heartbeat timeout and
	// restarts the job on the other workers.
	c.WaitRunning(id, j.Attempt+1, 90*time.Second)
	after := c.Job(id)
	c.WaitCheckpoint(id, after.Attempt, chk.ID, 60*time.Second)
	if j := c.Job(id); j.State != "RUNNING" {
		t.Fatalf("the job is %s before the zombie woke up: the faults did not hit a running job (slower rate?)", j.State)
	}
	t.Logf("SIGCONT %s at +%s while attempt %d runs", victim, time.Since(began).Round(time.Millisecond), after.Attempt)
	if err := zombie.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false

	end := c.WaitEnded(id, 3*time.Minute)
	if end.State != "FINISHED" {
		t.Fatalf("job %s ended %s: %s", id, end.State, end.FailureCause)
	}
	if end.Restarts < 3 {
		t.Fatalf("%d restarts, want at least 3 (two kills and the stopped worker)", end.Restarts)
	}
	r := readOutput(t, out)
	t.Logf("%d restarts; %d committed files, %d lines; %d in-progress files left; whole test %s",
		end.Restarts, r.files, r.lines, r.hidden, time.Since(began).Round(time.Millisecond))
	if problems := r.check(events); len(problems) > 0 {
		t.Fatalf("committed output is not exactly once:\n%s", strings.Join(problems, "\n"))
	}
}

// twoCheckpoints waits until two checkpoints of the attempt completed, so
// that a fault finds parts committed, pending and in progress.
func twoCheckpoints(c *proc.Cluster, id string, attempt int64) api.CheckpointStats {
	c.T.Helper()
	first := c.WaitCheckpoint(id, attempt, 0, 60*time.Second)
	return c.WaitCheckpoint(id, attempt, first.ID, 60*time.Second)
}

// sinkWorker returns a worker running a subtask of the sink node.
func sinkWorker(c *proc.Cluster, id string) string {
	c.T.Helper()
	for _, v := range c.Job(id).Vertices {
		if !slices.Contains(v.Nodes, "out") {
			continue
		}
		for _, s := range v.Subtasks {
			if s.Worker != "" {
				return s.Worker
			}
		}
	}
	c.T.Fatalf("no worker runs the sink of job %s", id)
	return ""
}

type output struct {
	files, lines, hidden int
	counts               map[int64]int
	torn                 []string
}

// readOutput reads the visible files of the sink: the part files in the
// directory out, and also out-<i> files as the file sink wrote them before
// it had part files, so the test shows what that sink did.
func readOutput(t *testing.T, out string) output {
	t.Helper()
	r := output{counts: map[int64]int{}}
	var paths []string
	if entries, err := os.ReadDir(out); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				r.hidden++
				continue
			}
			paths = append(paths, filepath.Join(out, e.Name()))
		}
	}
	legacy, err := filepath.Glob(out + "-*")
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, legacy...)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		r.files++
		if len(b) > 0 && b[len(b)-1] != '\n' {
			r.torn = append(r.torn, fmt.Sprintf("%s ends in a partial line %q", filepath.Base(p), tail(b)))
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if len(b) == 0 {
				break
			}
			r.lines++
			var rec struct {
				ID *int64 `json:"id"`
			}
			if err := json.Unmarshal(line, &rec); err != nil || rec.ID == nil {
				r.torn = append(r.torn, fmt.Sprintf("%s: torn line %q", filepath.Base(p), line))
				continue
			}
			r.counts[*rec.ID]++
		}
	}
	return r
}

func tail(b []byte) []byte {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// check compares the output with the model: ids 0..n-1, each once.
func (r output) check(n int64) []string {
	var problems []string
	if r.files == 0 {
		problems = append(problems, "no committed file")
	}
	problems = append(problems, limit(r.torn, 5)...)
	var missing, dup, unexpected []int64
	for i := range n {
		switch c := r.counts[i]; {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			dup = append(dup, i)
		}
	}
	for v := range r.counts {
		if v < 0 || v >= n {
			unexpected = append(unexpected, v)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d ids missing (%s)", len(missing), ranges(missing)))
	}
	if len(dup) > 0 {
		problems = append(problems, fmt.Sprintf("%d ids more than once (%s)", len(dup), ranges(dup)))
	}
	if len(unexpected) > 0 {
		problems = append(problems, fmt.Sprintf("%d unexpected ids", len(unexpected)))
	}
	if len(r.torn) > 0 {
		problems = append(problems, fmt.Sprintf("%d torn lines in all", len(r.torn)))
	}
	return problems
}

func limit(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ranges prints sorted ids as at most five ranges.
func ranges(ids []int64) string {
	slices.Sort(ids)
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if len(parts) == 5 {
			parts = append(parts, "…")
			break
		}
		if i == j {
			parts = append(parts, fmt.Sprint(ids[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d–%d", ids[i], ids[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
