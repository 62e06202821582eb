package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/scale"
)

var (
	scaleSizes = flag.String("scale-sizes", "10:2:25,100:4:125",
		"scale benchmark: the small and the large size, each workers:jobs:parallelism (jobs of two vertices, so 2·jobs·parallelism subtasks)")
	scaleHeartbeat = flag.Duration("scale-heartbeat", 100*time.Millisecond, "scale benchmark: the coordinator's heartbeat interval")
	scaleIdle      = flag.Duration("scale-idle", 4*time.Second, "scale benchmark: how long heartbeats are counted with nothing else going on")
	scaleCkpts     = flag.Int("scale-checkpoints", 5, "scale benchmark: checkpoints every job completes in the checkpoint phase")
)

func parseScaleSizes(s string) ([2]scale.Size, error) {
	var out [2]scale.Size
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return out, fmt.Errorf("-scale-sizes %q: want two sizes, small,large", s)
	}
	for i, p := range parts {
		f := strings.Split(strings.TrimSpace(p), ":")
		var n [3]int
		ok := len(f) == 3
		for k := 0; ok && k < 3; k++ {
			v, err := strconv.Atoi(f[k])
			ok = err == nil && v > 0
			n[k] = v
		}
		if !ok {
			return out, fmt.Errorf("-scale-sizes %q: size %q is not workers:jobs:parallelism of positive numbers", s, p)
		}
		// Just enough slots, and one to spare per worker.
		slots := (n[1]*n[2]+n[0]-1)/n[0] + 1
		out[i] = scale.Size{Workers: n[0], Slots: slots, Jobs: n[1], Parallelism: n[2]}
	}
	return out, nil
}

// benchScale runs the scale harness (internal/scale: light workers in this
// process over real gRPC) against a fresh coordinator process per run, at a
// small and a large size, and prints the figures and how their cost per
// unit grows from the small size to the large one.
func (e *env) benchScale() error {
	sizes, err := parseScaleSizes(*scaleSizes)
	if err != nil {
		return err
	}
	res := [2][]*scale.Result{}
	for i := range *runs {
		for s, size := range sizes {
			r, err := e.scaleRun(fmt.Sprintf("scale-%d-%d", s, i), size)
			if err != nil {
				return fmt.Errorf("scale run %d, %s: %w", i, size, err)
			}
			res[s] = append(res[s], r)
			fmt.Printf("bench: scale run %d: %s: deploy %s (coordinator CPU %.2fs), baseline %.1f%% of a core, %d heartbeats at %.1f µs CPU each, %d checkpoints at %.2f ms CPU each, span %s, overhead after the last ack %s\n",
				i, size, r.Deploy.Round(time.Millisecond), r.DeployCPU, 100*r.BaselineCPU, r.Heartbeats, r.CPUPerHeartbeat*1e6, r.Checkpoints, r.CPUPerCheckpoint*1e3,
				r.CheckpointSpan.Round(time.Millisecond), r.CheckpointOverhead.Round(time.Millisecond))
		}
	}
	med := func(s int, f func(*scale.Result) float64) float64 {
		var xs []float64
		for _, r := range res[s] {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	names := [2]string{"small", "large"}
	type figure struct {
		name, unit string
		scale      float64
		value      func(*scale.Result) float64
		// per is the unit the growth ratio divides by.
		per func(scale.Size) float64
	}
	subtasks := func(s scale.Size) float64 { return float64(s.Subtasks()) }
	figures := []figure{
		{"deploy_ms", "ms", 1e3, func(r *scale.Result) float64 { return r.Deploy.Seconds() }, subtasks},
		{"deploy_cpu_ms", "ms", 1e3, func(r *scale.Result) float64 { return r.DeployCPU }, subtasks},
		{"checkpoint_overhead_ms", "ms", 1e3, func(r *scale.Result) float64 { return r.CheckpointOverhead.Seconds() }, subtasks},
		{"cpu_per_checkpoint_ms", "ms", 1e3, func(r *scale.Result) float64 { return r.CPUPerCheckpoint },
			func(s scale.Size) float64 { return float64(2 * s.Parallelism) }},
		{"cpu_per_heartbeat_us", "µs", 1e6, func(r *scale.Result) float64 { return r.CPUPerHeartbeat },
			func(s scale.Size) float64 { return float64(s.Subtasks()) / float64(s.Workers) }},
	}
	for _, f := range figures {
		var v [2]float64
		for s := range sizes {
			v[s] = med(s, f.value)
			fmt.Printf("BENCH scale_%s_%s %.3g %s\n", names[s], f.name, v[s]*f.scale, f.unit)
		}
		if v[0] > 0 {
			growth := (v[1] / f.per(sizes[1])) / (v[0] / f.per(sizes[0]))
			fmt.Printf("BENCH scale_%s_growth %.2f x\n", strings.TrimSuffix(strings.TrimSuffix(f.name, "_ms"), "_us"), growth)
		}
	}
	return nil
}

// scaleRun starts a coordinator process of its own, runs the harness at
// size against it and stops it.
func (e *env) scaleRun(name string, size scale.Size) (*scale.Result, error) {
	grpcAddr, httpAddr := freeAddr(), freeAddr()
	storage := "file://" + filepath.Join(e.dir, name)
	c, err := e.spawn(name+"-coordinator", "coordinator", "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--log-level", "warn",
		"--checkpoint-storage", storage, "--allowed-paths", e.dir, "--insecure", "--heartbeat-interval", scaleHeartbeat.String(),
		// The harness pauses heartbeats while it measures checkpoints.
		"--heartbeat-timeout", "2m")
	if err != nil {
		return nil, err
	}
	defer stopProc(c)
	client := api.NewClient("http://" + httpAddr)
	if err := poll(30*time.Second, func() (bool, error) {
		_, err := client.Workers(context.Background())
		return err == nil, nil
	}); err != nil {
		return nil, fmt.Errorf("coordinator did not come up (logs in %s): %w", e.dir, err)
	}
	return scale.Run(context.Background(), scale.Config{
		Size: size, GRPCAddr: grpcAddr, Client: client, Storage: storage,
		Idle: *scaleIdle, Checkpoints: *scaleCkpts,
		CPU: func() float64 { return threadCPUSeconds(c.Process.Pid) },
	})
}

// threadCPUSeconds is the CPU time of a process's live threads from
// /proc/<pid>/task/*/schedstat, in nanoseconds: the small size's figures
// are a few of /proc/<pid>/stat's 10 ms ticks. A Go process keeps its
// threads, so none of its time leaves with an exited one.
func threadCPUSeconds(pid int) float64 {
	paths, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var ns int64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			ns += n
		}
	}
	return float64(ns) / 1e9
}
