package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/tlsconf"
)

// tlsSecretEnv holds the bench broker's SASL password; every process the
// driver starts inherits it, and the secured job names it as a secret
// reference, as a production spec would.
const tlsSecretEnv = "WEIR_SECRET_BENCH_KAFKA"

// benchCluster is a cluster of its own for the tls benchmark: a broker, a
// coordinator and two workers of one slot each, so that a job at
// parallelism 2 has a subtask on each and its key_by exchange crosses
// the network between workers.
type benchCluster struct {
	name              string
	kafka, grpc, http string
	api               *api.Client
	workers           []*exec.Cmd
	procs             []*exec.Cmd
	// kafkaClient are the --kafka-* flags of loadgen; kafkaSpec is added
	// to the job's kafka mappings.
	kafkaClient []string
	kafkaSpec   string
}

// startBenchCluster starts one; secure makes it run mutual TLS between
// its processes and a broker that takes only TLS and SCRAM-SHA-512.
func (e *env) startBenchCluster(name string, secure bool) (*benchCluster, error) {
	c := &benchCluster{name: name, kafka: freeAddr(), grpc: freeAddr(), http: freeAddr()}
	c.api = api.NewClient("http://" + c.http)
	spawn := func(proc string, args ...string) (*exec.Cmd, error) {
		p, err := e.spawn(name+"-"+proc, args...)
		if err == nil {
			c.procs = append(c.procs, p)
		}
		return p, err
	}
	kafkaArgs := []string{"dev", "kafka", "--addr", c.kafka}
	var tlsArgs []string
	if secure {
		ca, err := tlsconf.NewCA("weir bench CA")
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(e.dir, name+"-tls")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		files, err := ca.WriteFiles(dir, "node", tlsconf.LocalHosts(), 24*time.Hour)
		if err != nil {
			return nil, err
		}
		const pw = "bench-s3cret"
		pwFile := filepath.Join(dir, "kafka-password")
		if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
			return nil, err
		}
		if err := os.Setenv(tlsSecretEnv, pw); err != nil {
			return nil, err
		}
		kafkaArgs = append(kafkaArgs, "--tls-cert", files.Cert, "--tls-key", files.Key,
			"--sasl-user", "bench", "--sasl-password-file", pwFile)
		tlsArgs = []string{"--tls-cert", files.Cert, "--tls-key", files.Key, "--tls-ca", files.CA}
		c.kafkaClient = []string{"--kafka-tls-ca", files.CA, "--kafka-sasl-mechanism", "SCRAM-SHA-512",
			"--kafka-sasl-user", "bench", "--kafka-sasl-password", "${env:" + tlsSecretEnv + "}"}
		c.kafkaSpec = fmt.Sprintf(`, tls: {ca_file: %q}, sasl: {mechanism: SCRAM-SHA-512, username: bench, password: "${env:%s}"}`,
			files.CA, tlsSecretEnv)
	}
	if _, err := spawn("kafka", kafkaArgs...); err != nil {
		return nil, err
	}
	if _, err := spawn("coordinator", append([]string{"coordinator", "--grpc-addr", c.grpc, "--http-addr", c.http, "--log-level", "warn",
		"--checkpoint-storage", e.checkpointStorage(), "--allowed-paths", e.dir, "--insecure"}, tlsArgs...)...); err != nil {
		return nil, err
	}
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("%s-worker-%d", name, i)
		w, err := spawn("worker-"+strconv.Itoa(i), append([]string{"worker", "--coordinator", c.grpc, "--slots", "1", "--id", id,
			"--log-level", "warn", "--allowed-paths", e.dir}, tlsArgs...)...)
		if err != nil {
			return nil, err
		}
		c.workers = append(c.workers, w)
	}
	err := poll(60*time.Second, func() (bool, error) {
		ws, err := c.api.Workers(context.Background())
		return err == nil && len(ws) == 2 && dialable(c.kafka), nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s cluster did not come up (logs in %s): %w", name, e.dir, err)
	}
	if _, err := e.weir(append([]string{"loadgen", "access-log", "--brokers", c.kafka, "--topic", "access-log",
		"--events", fmt.Sprint(*events), "--seed", "1", "--partitions", "4"}, c.kafkaClient...)...); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *benchCluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		stopProc(c.procs[i])
	}
}

// run runs bounded ip-visits over the cluster's access-log topic and
// returns events per second (submit → FINISHED) and per CPU second of
// the two workers.
func (c *benchCluster) run(outTopic string) (jobResult, error) {
	ctx := context.Background()
	cpu := func() float64 {
		var s float64
		for _, w := range c.workers {
			s += cpuSeconds(w.Process.Pid)
		}
		return s
	}
	cpu0 := cpu()
	start := time.Now()
	id, err := c.api.Submit(ctx, []byte(ipVisitsSpecWith(c.kafka, outTopic, "", "at-least-once", c.kafkaSpec)))
	if err != nil {
		return jobResult{}, err
	}
	for {
		j, err := c.api.Job(ctx, id)
		if err != nil {
			return jobResult{}, err
		}
		switch j.State {
		case "FINISHED":
			el := time.Since(start).Seconds()
			n := float64(*events)
			return jobResult{id: id, eps: n / el, perCPU: n / (cpu() - cpu0)}, nil
		case "FAILED", "CANCELLED":
			return jobResult{}, fmt.Errorf("%s job %s %s: %s", c.name, id, j.State, j.FailureCause)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchTLS prints ipvisits_tls_vs_plain: ip-visits on a cluster with
// mutual TLS between its processes (control and data plane) and a broker
// that takes only TLS and SCRAM-SHA-512, over the same job on a plaintext
// cluster of the same shape. The two clusters run side by side and their
// jobs alternate (which goes first alternates too), -runs pairs; the ratio
// is the median over the pairs of secure/plain within a pair.
func (e *env) benchTLS() error {
	plain, err := e.startBenchCluster("plain", false)
	if err != nil {
		return err
	}
	defer plain.stop()
	secure, err := e.startBenchCluster("secure", true)
	if err != nil {
		return err
	}
	defer secure.stop()
	var plainEPS, secEPS, ratios, cpuRatios []float64
	for i := 0; i < *runs; i++ {
		order := []*benchCluster{plain, secure}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		got := map[string]jobResult{}
		for _, c := range order {
			r, err := c.run(fmt.Sprintf("ip-visits-%s-%d", c.name, i))
			if err != nil {
				return fmt.Errorf("tls run %d: %w", i, err)
			}
			got[c.name] = r
		}
		p, s := got["plain"], got["secure"]
		plainEPS, secEPS = append(plainEPS, p.eps), append(secEPS, s.eps)
		ratios, cpuRatios = append(ratios, s.eps/p.eps), append(cpuRatios, s.perCPU/p.perCPU)
		fmt.Printf("bench: tls run %d: plaintext %.0f events/s (%.0f events/cpu_s), mTLS + Kafka TLS/SCRAM %.0f events/s (%.0f events/cpu_s); ratio %.2f\n",
			i, p.eps, p.perCPU, s.eps, s.perCPU, s.eps/p.eps)
	}
	fmt.Printf("BENCH ipvisits_plain_events_per_s %.0f events/s\n", median(plainEPS))
	fmt.Printf("BENCH ipvisits_tls_events_per_s %.0f events/s\n", median(secEPS))
	fmt.Printf("BENCH ipvisits_tls_vs_plain %.2f x\n", median(ratios))
	fmt.Printf("BENCH ipvisits_tls_vs_plain_cpu %.2f x\n", median(cpuRatios))
	return nil
}
