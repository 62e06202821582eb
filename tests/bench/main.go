// Command bench runs weir's benchmarks against baselines measured in the same
// run on the same broker, and prints lines "BENCH <name> <value> <unit>".
//
// It starts real processes from bin/weir (a broker, a coordinator, workers),
// so the figures include the data exchange and Kafka client costs a user
// pays. The benchmarks, in order (-only picks a subset): ipvisits
// (throughput against a sarama loop, and the throughput cost of 1 s
// checkpoints), eos (ip-visits with the exactly-once against the
// at-least-once Kafka sink, and produce → read_committed latency of a
// pass-through job with each), tls (ip-visits on a cluster with mutual TLS
// and a TLS+SCRAM broker against a plaintext one), datagen (CPU per event), sdk (a count per
// key and minute written with the SDK against the built-in window), nexmark
// (Nexmark q0 and q1 per CPU second, against Flink's published figures), keys1m (checkpoints of 1M keys of
// window state: duration, size, processing pause), formats (reading Avro
// through a schema registry against JSON, per CPU), scale (light workers
// over real gRPC against a coordinator process of its own: deploy time,
// checkpoint overhead and coordinator CPU at 10 and 100 workers, 100 and
// 1,000 subtasks) and recovery (SIGKILL of a worker → first output of the
// restored job). docs/bench.md describes
// every line. Each figure is a median over several runs.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/netaddr"
)

var (
	binPath  = flag.String("bin", "bin/weir", "weir binary")
	events   = flag.Int64("events", 1_000_000, "access-log events in the Kafka benchmarks")
	genCount = flag.Int64("datagen-events", 5_000_000, "events in the datagen benchmark")
	runs     = flag.Int("runs", 3, "runs per figure; the median is reported")
	ckptMode = flag.String("checkpoint-mode", "exactly_once", "checkpoint mode of the checkpointed ip-visits runs (exactly_once or at_least_once)")
	ckptRuns = flag.Int("checkpoint-runs", 3, "runs of ip-visits with and without checkpoints for checkpoint_overhead_pct")
	kills    = flag.Int("kills", 5, "worker SIGKILLs in the recovery benchmark")
	only     = flag.String("only", "", "comma-separated subset of the benchmarks to run: "+strings.Join(allBenches, ",")+" (default: all)")
	keep     = flag.Bool("keep", false, "keep the work directory")
)

// allBenches in the order they run. recovery runs last: it stops the
// benchmark worker and kills the workers it starts.
var allBenches = []string{"ipvisits", "eos", "tls", "datagen", "sdk", "nexmark", "keys1m", "formats", "scale", "recovery"}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type env struct {
	bin, dir          string
	kafka, grpc, http string
	api               *api.Client
	procs             []*exec.Cmd
	worker            *exec.Cmd
	accessLog         bool // the access-log topic is written
}

func run() error {
	selected := map[string]bool{}
	for _, b := range strings.Split(*only, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		if !slices.Contains(allBenches, b) {
			return fmt.Errorf("-only: unknown benchmark %q (want some of %s)", b, strings.Join(allBenches, ","))
		}
		selected[b] = true
	}
	want := func(b string) bool { return len(selected) == 0 || selected[b] }

	bin, err := filepath.Abs(*binPath)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "weir-bench-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	e := &env{bin: bin, dir: dir, kafka: freeAddr(), grpc: freeAddr(), http: freeAddr()}
	e.api = api.NewClient("http://" + e.http)
	defer e.stop()
	// scale starts coordinators of its own: alone, it needs no broker or
	// benchmark worker.
	if slices.ContainsFunc(allBenches, func(b string) bool { return b != "scale" && want(b) }) {
		if err := e.start(); err != nil {
			return err
		}
	}
	fmt.Printf("bench: %s, %d cores, work dir %s, %d runs per figure (median)\n",
		time.Now().UTC().Format(time.RFC3339), numCPU(), dir, *runs)

	if want("ipvisits") {
		if err := e.benchIPVisits(); err != nil {
			return err
		}
	}
	if want("eos") {
		if err := e.benchEOS(); err != nil {
			return err
		}
	}
	if want("tls") {
		if err := e.benchTLS(); err != nil {
			return err
		}
	}
	if want("datagen") {
		var gen []float64
		for i := 0; i < *runs; i++ {
			r, err := e.runJob(datagenCount(*genCount), *genCount)
			if err != nil {
				return fmt.Errorf("datagen run %d: %w", i, err)
			}
			gen = append(gen, r.perCPU)
		}
		fmt.Printf("BENCH datagen_count_events_per_cpu_s %.0f events/cpu_s\n", median(gen))
	}
	if want("sdk") {
		if err := benchSDK(); err != nil {
			return err
		}
	}
	if want("nexmark") {
		if err := e.benchNexmark(); err != nil {
			return err
		}
	}
	if want("keys1m") {
		if err := e.benchKeys1M(); err != nil {
			return err
		}
	}
	if want("formats") {
		if err := e.benchFormats(); err != nil {
			return err
		}
	}
	if want("scale") {
		if err := e.benchScale(); err != nil {
			return err
		}
	}
	if want("recovery") {
		if err := e.benchRecovery(); err != nil {
			return err
		}
	}
	return nil
}

// benchIPVisits runs ip-visits without checkpoints, the sarama loop and
// ip-visits with 1 s checkpoints in turn, all over the same input topic, so
// that the medians see the same machine conditions. The sarama loop runs
// -runs times, the two ip-visits variants max(-runs, -checkpoint-runs)
// times each. The checkpoint overhead is the median over the runs of
// 1 − (checkpointed / plain) of one run, so that a slow phase of the machine
// hits both sides of a ratio.
func (e *env) benchIPVisits() error {
	if err := e.ensureAccessLog(); err != nil {
		return err
	}
	var weirEPS, weirCPU, loopEPS, ckptEPS, ckptCPU, lossEPS, lossCPU, ckptMs []float64
	completed, failed := 0, 0
	for i := 0; i < max(*runs, *ckptRuns); i++ {
		r, err := e.runJob(ipVisitsBounded(e.kafka, fmt.Sprintf("ip-visits-bench-%d", i), ""), *events)
		if err != nil {
			return fmt.Errorf("ip-visits run %d: %w", i, err)
		}
		weirEPS, weirCPU = append(weirEPS, r.eps), append(weirCPU, r.perCPU)
		line := fmt.Sprintf("bench: run %d: ip-visits %.0f events/s (%.0f events/cpu_s)", i, r.eps, r.perCPU)
		if i < *runs {
			l, err := saramaLoop(e.kafka, "access-log", fmt.Sprintf("ip-visits-loop-%d", i), *events)
			if err != nil {
				return fmt.Errorf("sarama loop run %d: %w", i, err)
			}
			loopEPS = append(loopEPS, l)
			line += fmt.Sprintf(", sarama loop %.0f events/s", l)
		}
		if i < *ckptRuns {
			c, err := e.runJob(ipVisitsBounded(e.kafka, fmt.Sprintf("ip-visits-ckpt-%d", i), e.checkpointStorage()), *events)
			if err != nil {
				return fmt.Errorf("checkpointed ip-visits run %d: %w", i, err)
			}
			ckptEPS, ckptCPU = append(ckptEPS, c.eps), append(ckptCPU, c.perCPU)
			lossEPS = append(lossEPS, 100*(1-c.eps/r.eps))
			lossCPU = append(lossCPU, 100*(1-c.perCPU/r.perCPU))
			cps, err := e.api.Checkpoints(context.Background(), c.id)
			if err != nil {
				return err
			}
			completed += cps.Counts.Completed
			failed += cps.Counts.Failed
			for _, h := range cps.History {
				switch h.Status {
				case "COMPLETED":
					ckptMs = append(ckptMs, float64(h.DurationMs))
				case "FAILED":
					fmt.Printf("bench: run %d: checkpoint %d failed: %s: %s\n", i, h.ID, h.FailureReason, h.Failure)
				}
			}
			line += fmt.Sprintf(", with 1s checkpoints %.0f events/s (%.0f events/cpu_s; %d checkpoints completed, %d failed)",
				c.eps, c.perCPU, cps.Counts.Completed, cps.Counts.Failed)
		}
		fmt.Println(line)
	}
	if len(weirEPS) == 0 {
		return e.benchCheckpointPairs()
	}
	w := median(weirEPS)
	fmt.Printf("BENCH ipvisits_events_per_s %.0f events/s\n", w)
	fmt.Printf("BENCH ipvisits_events_per_cpu_s %.0f events/cpu_s\n", median(weirCPU))
	if len(loopEPS) > 0 {
		l := median(loopEPS)
		fmt.Printf("BENCH sarama_loop_events_per_s %.0f events/s\n", l)
		fmt.Printf("BENCH ipvisits_vs_sarama_loop %.2f x\n", w/l)
	}
	if len(ckptEPS) > 0 {
		fmt.Printf("BENCH ipvisits_checkpointed_events_per_s %.0f events/s\n", median(ckptEPS))
		fmt.Printf("bench: checkpoint overhead per run (events/s, events/cpu_s): %s\n", pairs(lossEPS, lossCPU))
		fmt.Printf("BENCH checkpoint_overhead_pct %.1f %%\n", median(lossEPS))
		fmt.Printf("BENCH checkpoint_overhead_cpu_pct %.1f %%\n", median(lossCPU))
		fmt.Printf("BENCH checkpoint_overhead_checkpoints_completed %d checkpoints\n", completed)
		if len(ckptMs) > 0 {
			fmt.Printf("BENCH ipvisits_checkpoint_duration_ms %.0f ms\n", median(ckptMs))
		}
		if failed > 0 {
			fmt.Printf("bench: %d checkpoints of the checkpointed ip-visits runs failed\n", failed)
		}
	}
	return e.benchCheckpointPairs()
}

// checkpointStorage is the file:// URI checkpoints are written to, inside
// the work directory.
func (e *env) checkpointStorage() string {
	return "file://" + filepath.Join(e.dir, "checkpoints")
}

// spawn starts bin/weir with args as a child process that dies with the
// benchmark; its output goes to <work dir>/<name>.log.
func (e *env) spawn(name string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	c := exec.Command(e.bin, args...)
	c.Stdout, c.Stderr = f, f
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		f.Close()
		return nil, err
	}
	e.procs = append(e.procs, c)
	return c, nil
}

// startWorker starts a worker and waits until the coordinator lists it.
func (e *env) startWorker(id string, slots int) (*exec.Cmd, error) {
	w, err := e.spawn("worker-"+id, "worker", "--coordinator-grpc", e.grpc, "--slots", strconv.Itoa(slots), "--id", id, "--log-level", "warn",
		"--allowed-paths", e.dir)
	if err != nil {
		return nil, err
	}
	err = poll(30*time.Second, func() (bool, error) {
		ws, err := e.api.Workers(context.Background())
		if err != nil {
			return false, nil // the coordinator may still be starting
		}
		return slices.ContainsFunc(ws, func(x api.Worker) bool { return x.ID == id }), nil
	})
	if err != nil {
		return nil, fmt.Errorf("worker %s did not register (logs in %s): %w", id, e.dir, err)
	}
	return w, nil
}

func (e *env) start() error {
	if _, err := e.spawn("kafka", "dev", "kafka", "--addr", e.kafka); err != nil {
		return err
	}
	if _, err := e.spawn("coordinator", "coordinator", "--grpc-addr", e.grpc, "--http-addr", e.http, "--log-level", "warn",
		"--checkpoint-storage", e.checkpointStorage(), "--allowed-paths", e.dir, "--insecure"); err != nil {
		return err
	}
	w, err := e.startWorker("bench-worker", 16)
	if err != nil {
		return err
	}
	e.worker = w
	if err := poll(30*time.Second, func() (bool, error) { return dialable(e.kafka), nil }); err != nil {
		return fmt.Errorf("broker did not come up; logs in %s", e.dir)
	}
	return nil
}

// stopProc ends one child process: SIGINT (a worker drains on SIGTERM,
// waiting for room elsewhere), SIGKILL after 5 s.
func stopProc(c *exec.Cmd) {
	if c.ProcessState != nil {
		return // already waited for
	}
	_ = c.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

func (e *env) stop() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		stopProc(e.procs[i])
	}
}

func (e *env) weir(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, e.bin, args...)
	c.Env = append(os.Environ(), "WEIR_COORDINATOR=http://"+e.http)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("weir %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// poll calls cond every 20 ms until it returns true or an error, or until
// timeout.
func poll(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type jobResult struct {
	id          string
	eps, perCPU float64
}

// runJob submits a bounded job, waits for it to finish and returns events
// per wall-clock second and events per CPU-second of the worker process.
// It polls over the REST client in process: a `weir status` process every
// 20 ms would cost the worker a good part of a core.
func (e *env) runJob(specYAML string, n int64) (jobResult, error) {
	ctx := context.Background()
	cpu0 := cpuSeconds(e.worker.Process.Pid)
	start := time.Now()
	id, err := e.api.Submit(ctx, []byte(specYAML))
	if err != nil {
		return jobResult{}, err
	}
	for {
		j, err := e.api.Job(ctx, id)
		if err != nil {
			return jobResult{}, err
		}
		switch j.State {
		case "FINISHED":
			el := time.Since(start).Seconds()
			cpu := cpuSeconds(e.worker.Process.Pid) - cpu0
			return jobResult{id: id, eps: float64(n) / el, perCPU: float64(n) / cpu}, nil
		case "FAILED", "CANCELLED":
			return jobResult{}, fmt.Errorf("job %s %s: %s", id, j.State, j.FailureCause)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkpointBlock is the spec's checkpoint block for 1 s checkpoints into
// storage, or nothing when storage is empty.
func checkpointBlock(storage string) string {
	if storage == "" {
		return ""
	}
	return fmt.Sprintf("checkpoint: {interval: 1s, mode: %s, storage: %q}\n", *ckptMode, storage)
}

// ipVisitsBounded is examples/ip-visits.yaml over the bounded access-log
// topic, with 1 s checkpoints into storage unless storage is empty.
func ipVisitsBounded(brokers, outTopic, storage string) string {
	return ipVisitsSpec(brokers, outTopic, checkpointBlock(storage), "at-least-once")
}

// ipVisitsSpec is ip-visits with the given checkpoint block (may be empty)
// and Kafka sink delivery.
func ipVisitsSpec(brokers, outTopic, ckpt, delivery string) string {
	return ipVisitsSpecWith(brokers, outTopic, ckpt, delivery, "")
}

// ipVisitsSpecWith is ipVisitsSpec with kafkaExtra (", tls: …, sasl: …")
// added to the source's and the sink's kafka mappings.
func ipVisitsSpecWith(brokers, outTopic, ckpt, delivery, kafkaExtra string) string {
	return fmt.Sprintf(`name: ip-visits-bench
parallelism: 2
%spipeline:
  - name: access-log
    source:
      kafka: {brokers: [%q], topic: access-log, format: json, bounded: true%s}
      schema: {ip: string, ts: int, url: string, status: int, bytes: int}
      event_time: {field: ts, max_out_of_orderness: 5s}
  - name: ok
    filter: status != 404
  - name: by-ip
    key_by: ip
  - name: per-minute
    window:
      tumbling: 1m
      aggregates:
        count: count()
        bytes: sum(bytes)
  - name: out
    sink:
      kafka: {brokers: [%q], topic: %s, key: ip, format: json, delivery: %s%s}
`, ckpt, brokers, kafkaExtra, brokers, outTopic, delivery, kafkaExtra)
}

func datagenCount(n int64) string {
	return fmt.Sprintf(`name: datagen-count-bench
parallelism: 1
pipeline:
  - name: gen
    source:
      datagen: {profile: access-log, seed: 1, count: %d}
      event_time: {field: ts, max_out_of_orderness: 5s}
  - name: ok
    filter: status != 404
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
`, n)
}

// cpuSeconds returns user+system CPU time of a process from /proc.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	// fields after ')' start at field 3 (state); utime is field 14, stime 15.
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// pairs formats two series side by side: "(a0%, b0%) (a1%, b1%) ...".
func pairs(a, b []float64) string {
	var sb strings.Builder
	for i := range a {
		fmt.Fprintf(&sb, " (%.1f%%, %.1f%%)", a[i], b[i])
	}
	return strings.TrimSpace(sb.String())
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func freeAddr() string {
	addr, err := netaddr.FreePort("127.0.0.1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: no free port:", err)
		os.Exit(1)
	}
	return addr
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func numCPU() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "processor") {
			n++
		}
	}
	return n
}
