// Command bench runs weir's benchmarks against baselines measured in the same
// run on the same broker, and prints lines "BENCH <name> <value> <unit>".
//
// It starts real processes from bin/weir (a broker, a coordinator, one
// worker), so the figures include the data exchange and Kafka client costs a
// user pays. Each figure is the median of -runs runs.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	binPath  = flag.String("bin", "bin/weir", "weir binary")
	events   = flag.Int64("events", 1_000_000, "access-log events in the Kafka benchmarks")
	genCount = flag.Int64("datagen-events", 5_000_000, "events in the datagen benchmark")
	runs     = flag.Int("runs", 3, "runs per figure; the median is reported")
	keep     = flag.Bool("keep", false, "keep the work directory")
)

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
	procs             []*exec.Cmd
	worker            *exec.Cmd
}

func run() error {
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
	defer e.stop()
	if err := e.start(); err != nil {
		return err
	}
	fmt.Printf("bench: %d cores, work dir %s, %d runs per figure (median)\n", numCPU(), dir, *runs)

	if _, err := e.weir("loadgen", "access-log", "--brokers", e.kafka, "--topic", "access-log",
		"--events", strconv.FormatInt(*events, 10), "--seed", "1", "--partitions", "4"); err != nil {
		return err
	}

	var weirEPS, weirCPU, loopEPS []float64
	for i := 0; i < *runs; i++ {
		eps, cpu, err := e.runJob(ipVisitsBounded(e.kafka, fmt.Sprintf("ip-visits-bench-%d", i)), *events)
		if err != nil {
			return fmt.Errorf("ip-visits run %d: %w", i, err)
		}
		weirEPS, weirCPU = append(weirEPS, eps), append(weirCPU, cpu)
		l, err := saramaLoop(e.kafka, "access-log", fmt.Sprintf("ip-visits-loop-%d", i), *events)
		if err != nil {
			return fmt.Errorf("sarama loop run %d: %w", i, err)
		}
		loopEPS = append(loopEPS, l)
	}
	w, l := median(weirEPS), median(loopEPS)
	fmt.Printf("BENCH ipvisits_events_per_s %.0f events/s\n", w)
	fmt.Printf("BENCH ipvisits_events_per_cpu_s %.0f events/cpu_s\n", median(weirCPU))
	fmt.Printf("BENCH sarama_loop_events_per_s %.0f events/s\n", l)
	fmt.Printf("BENCH ipvisits_vs_sarama_loop %.2f x\n", w/l)

	var gen []float64
	for i := 0; i < *runs; i++ {
		_, cpu, err := e.runJob(datagenCount(*genCount), *genCount)
		if err != nil {
			return fmt.Errorf("datagen run %d: %w", i, err)
		}
		gen = append(gen, cpu)
	}
	fmt.Printf("BENCH datagen_count_events_per_cpu_s %.0f events/cpu_s\n", median(gen))
	return nil
}

func (e *env) start() error {
	spawn := func(name string, args ...string) (*exec.Cmd, error) {
		f, err := os.Create(filepath.Join(e.dir, name+".log"))
		if err != nil {
			return nil, err
		}
		c := exec.Command(e.bin, args...)
		c.Stdout, c.Stderr = f, f
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			return nil, err
		}
		e.procs = append(e.procs, c)
		return c, nil
	}
	if _, err := spawn("kafka", "dev", "kafka", "--addr", e.kafka); err != nil {
		return err
	}
	if _, err := spawn("coordinator", "coordinator", "--grpc-addr", e.grpc, "--http-addr", e.http, "--log-level", "warn"); err != nil {
		return err
	}
	w, err := spawn("worker", "worker", "--coordinator", e.grpc, "--slots", "4", "--id", "bench-worker", "--log-level", "warn")
	if err != nil {
		return err
	}
	e.worker = w
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := e.weir("workers", "-o", "json")
		if err == nil && strings.Contains(out, "bench-worker") && dialable(e.kafka) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster did not come up; logs in %s", e.dir)
}

func (e *env) stop() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		_ = e.procs[i].Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func(c *exec.Cmd) { _ = c.Wait(); close(done) }(e.procs[i])
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = e.procs[i].Process.Kill()
		}
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

// runJob submits a bounded job, waits for it to finish and returns events
// per wall-clock second and events per CPU-second of the worker process.
func (e *env) runJob(specYAML string, n int64) (eps, perCPU float64, err error) {
	path := filepath.Join(e.dir, "job.yaml")
	if err := os.WriteFile(path, []byte(specYAML), 0o644); err != nil {
		return 0, 0, err
	}
	cpu0 := cpuSeconds(e.worker.Process.Pid)
	start := time.Now()
	out, err := e.weir("submit", path)
	if err != nil {
		return 0, 0, err
	}
	id := strings.TrimSpace(out)
	for {
		out, err := e.weir("status", id, "-o", "json")
		if err != nil {
			return 0, 0, err
		}
		var st struct {
			State   string `json:"state"`
			Failure string `json:"failure_cause"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return 0, 0, fmt.Errorf("status: %v: %s", err, out)
		}
		switch st.State {
		case "FINISHED":
			el := time.Since(start).Seconds()
			cpu := cpuSeconds(e.worker.Process.Pid) - cpu0
			return float64(n) / el, float64(n) / cpu, nil
		case "FAILED", "CANCELLED":
			return 0, 0, fmt.Errorf("job %s %s: %s", id, st.State, st.Failure)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ipVisitsBounded(brokers, outTopic string) string {
	return fmt.Sprintf(`name: ip-visits-bench
parallelism: 2
pipeline:
  - name: access-log
    source:
      kafka: {brokers: [%q], topic: access-log, format: json, bounded: true}
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
      kafka: {brokers: [%q], topic: %s, key: ip, format: json}
`, brokers, brokers, outTopic)
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

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: no free port:", err)
		os.Exit(1)
	}
	defer l.Close()
	return l.Addr().String()
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
