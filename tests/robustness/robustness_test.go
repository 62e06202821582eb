// Package robustness is weir's fault suite: ip-visits runs on a cluster of
// real processes — a development etcd, the development broker as its own
// process, two coordinators sharing etcd, three workers — while a fault
// driver injects faults at seeded random times; then the output is checked
// with `weir verify` and with a second, independent reader.
//
// Fault kinds:
//
//	kill-worker        SIGKILL a worker, start a replacement
//	failpoint-crash    start a worker armed to crash at the k-th hit of a
//	                   named failpoint on the exactly-once path
//	kill-coordinator   SIGKILL the leading coordinator, start it again
//	etcd-outage        SIGSTOP etcd for 1–3 s, then SIGCONT
//	restart-broker     SIGKILL the broker and start it again on its data
//
// Every run prints its seed and the faults it injected; -seed replays a
// run. `make test` runs one short seed; `make test-robustness` runs
// -seeds 5 -faults 20 (20 faults of every kind per seed).
package robustness

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/internal/proc"
)

var (
	seedFlag   = flag.Uint64("seed", 0, "seed of the first run (0: from the clock); a run's seed replays it")
	seedsFlag  = flag.Int("seeds", 1, "number of runs, with seeds seed, seed+1, …")
	faultsFlag = flag.Int("faults", 1, "faults of every kind per run")
	eventsFlag = flag.Int("events", 0, "events per run (0: 15000 per fault, at least 100000)")
	rateFlag   = flag.Int("rate", 5000, "events per second loadgen writes")
)

// TestRobustness runs the suite; see the package doc.
func TestRobustness(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault suite")
	}
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()%1_000_000 + 1)
	}
	for i := range *seedsFlag {
		s := seed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) { runSeed(t, s) })
	}
}

type run struct {
	t       *testing.T
	rng     *rand.Rand
	bin     string
	dir     string
	etcd    string
	kafka   string
	storage string
	kdata   string

	etcdP   *proc.Process
	kafkaP  *proc.Process
	coords  []*coord
	workers map[string]*proc.Process
	nextW   int
	log     []string
}

type coord struct {
	name, grpc, http string
	p                *proc.Process
}

const faultKinds = 5

func runSeed(t *testing.T, seed uint64) {
	r := &run{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), bin: failpointBinary(t), dir: proc.ArtifactDir(t),
		etcd: proc.FreeAddr(t), kafka: proc.FreeAddr(t), storage: filepath.Join(t.TempDir(), "checkpoints"),
		kdata: filepath.Join(t.TempDir(), "kafka"), workers: map[string]*proc.Process{}}
	events := *eventsFlag
	if events == 0 {
		events = max(100000, 15000**faultsFlag*faultKinds)
	}
	t.Logf("seed %d: %d events at %d/s, %d faults of every kind (replay: go test ./tests/robustness -run TestRobustness -args -seed %d -faults %d -events %d)",
		seed, events, *rateFlag, *faultsFlag, seed, *faultsFlag, events)
	defer func() { t.Logf("seed %d: faults injected:\n  %s", seed, strings.Join(r.log, "\n  ")) }()

	r.etcdP = proc.Start(t, r.dir, r.bin, "etcd", nil, "dev", "etcd", "--addr", r.etcd, "--data-dir", filepath.Join(t.TempDir(), "etcd"))
	r.startBroker()
	for i := range 2 {
		co := &coord{name: fmt.Sprintf("coordinator-%d", i+1), grpc: proc.FreeAddr(t), http: proc.FreeAddr(t)}
		r.coords = append(r.coords, co)
		r.startCoordinator(co)
	}
	for range 3 {
		r.startWorker("")
	}
	lead := r.leader()
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		out, code := r.weir(lead, "workers", "-o", "json")
		var ws []any
		_ = json.Unmarshal([]byte(out), &ws)
		return code == 0 && len(ws) == 3, out
	})
	spec := filepath.Join(t.TempDir(), "ip-visits.yaml")
	if err := os.WriteFile(spec, ipVisitsExactlyOnce(t), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := r.weir(lead, "submit", spec, "-p", "4")
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s", code, out)
	}
	job := strings.TrimSpace(out)
	r.waitRecovered(job, 0)

	loadgen := proc.Start(t, r.dir, r.bin, "loadgen", nil, "loadgen", "access-log", "--brokers", r.kafka, "--topic", "access-log",
		"--events", strconv.Itoa(events), "--seed", strconv.FormatUint(seed, 10), "--partitions", "4", "--rate", strconv.Itoa(*rateFlag))

	// Phase 1, while the input streams in: every kind but the broker's
	// (loadgen is a plain producer; restarting the broker under it is
	// phase 2's business), in a seeded order.
	var plan []string
	for range *faultsFlag {
		plan = append(plan, "kill-worker", "failpoint-crash", "kill-coordinator", "etcd-outage")
	}
	r.rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	for i, kind := range plan {
		done := r.completedCheckpoints(job)
		time.Sleep(time.Duration(r.rng.IntN(1500)) * time.Millisecond) // the seeded moment
		r.inject(i+1, kind)
		r.waitRecovered(job, done)
		if loadgen.Exited() {
			t.Logf("the input ended after %d of %d phase-1 faults; give more -events for more overlap", i+1, len(plan))
		}
	}
	if code, err := loadgen.Wait(10 * time.Minute); err != nil || code != 0 {
		t.Fatalf("loadgen: exit %d %v", code, err)
	}
	// Phase 2: broker restarts while the job drains and commits.
	for i := range *faultsFlag {
		done := r.completedCheckpoints(job)
		time.Sleep(time.Duration(r.rng.IntN(1500)) * time.Millisecond)
		r.inject(len(plan)+i+1, "restart-broker")
		r.waitRecovered(job, done)
	}

	v := r.verify(job, seed, events)
	records, distinct := readOutput(t, r.kafka)
	t.Logf("seed %d: verify: matched %d, lost %d, duplicated %d, wrong %d, unexpected %d, pending %d; independent read_committed reader: %d records, %d distinct windows",
		seed, v.Matched, v.Lost, v.Duplicated, v.Wrong, v.Unexpected, v.Pending, records, distinct)
	if present := v.Matched + v.Wrong + v.Unexpected; distinct != present || records != present+v.Duplicated {
		t.Errorf("the readers disagree: weir verify saw %d windows and %d extra copies, kgo %d windows in %d records",
			present, v.Duplicated, distinct, records)
	}
}

// ipVisitsExactlyOnce is the example job with 1 s checkpoints and the
// exactly-once Kafka sink.
func ipVisitsExactlyOnce(t *testing.T) []byte {
	data, err := os.ReadFile("../../examples/ip-visits.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "        topic: ${OUTPUT_TOPIC:-ip-visits}\n", "        topic: ${OUTPUT_TOPIC:-ip-visits}\n        delivery: exactly-once\n", 1)
	// Restart quickly after every fault: the default exponential backoff
	// would grow towards 30 s under a fault every few seconds.
	s = strings.Replace(s, "pipeline:\n", "restart: {strategy: exponential, initial: 200ms, max: 2s}\npipeline:\n", 1)
	if !strings.Contains(s, "delivery: exactly-once") || !strings.Contains(s, "restart:") {
		t.Fatal("examples/ip-visits.yaml: cannot add the sink's delivery and the restart strategy")
	}
	return []byte(s)
}

func (r *run) record(format string, args ...any) {
	line := fmt.Sprintf("%s  ", time.Now().Format("15:04:05.000")) + fmt.Sprintf(format, args...)
	r.log = append(r.log, line)
	r.t.Log(line)
}

func (r *run) inject(n int, kind string) {
	switch kind {
	case "kill-worker":
		id := r.anyWorker()
		r.workers[id].Kill()
		delete(r.workers, id)
		r.record("#%d kill-worker: SIGKILL %s", n, id)
		r.startWorker("")
	case "failpoint-crash":
		names := []string{"kafka-sink-after-precommit", "kafka-sink-commit", "task-state-upload"}
		fp := fmt.Sprintf("%s=crash@%d", names[r.rng.IntN(len(names))], 1+r.rng.IntN(3))
		id := r.startWorker(fp)
		// The armed worker takes over the slots of a killed one.
		victim := r.anyWorkerExcept(id)
		r.workers[victim].Kill()
		delete(r.workers, victim)
		r.record("#%d failpoint-crash: %s armed with %s replaces SIGKILLed %s", n, id, fp, victim)
	case "kill-coordinator":
		lead := r.leader()
		lead.p.Kill()
		r.record("#%d kill-coordinator: SIGKILL leader %s", n, lead.name)
		r.startCoordinator(lead)
	case "etcd-outage":
		d := time.Duration(1000+r.rng.IntN(2000)) * time.Millisecond
		_ = r.etcdP.Signal(syscall.SIGSTOP)
		r.record("#%d etcd-outage: etcd stopped for %s", n, d)
		time.Sleep(d)
		_ = r.etcdP.Signal(syscall.SIGCONT)
	case "restart-broker":
		r.kafkaP.Kill()
		r.record("#%d restart-broker: SIGKILL the broker, start it again", n)
		r.startBroker()
	default:
		r.t.Fatalf("unknown fault kind %q", kind)
	}
}

func (r *run) startBroker() {
	r.kafkaP = proc.Start(r.t, r.dir, r.bin, "kafka", nil, "dev", "kafka", "--addr", r.kafka, "--data-dir", r.kdata)
	proc.Eventually(r.t, 30*time.Second, func() (bool, string) {
		c, err := net.DialTimeout("tcp", r.kafka, time.Second)
		if err != nil {
			return false, "broker: " + err.Error()
		}
		c.Close()
		return true, ""
	})
}

func (r *run) startCoordinator(co *coord) {
	co.p = proc.Start(r.t, r.dir, r.bin, co.name, nil, "coordinator",
		"--etcd", r.etcd, "--lease-ttl", "2s", "--grpc-addr", co.grpc, "--http-addr", co.http,
		"--heartbeat-timeout", "3s", "--checkpoint-storage", "file://"+r.storage, "--insecure")
}

func (r *run) grpcAddrs() string {
	var as []string
	for _, co := range r.coords {
		as = append(as, co.grpc)
	}
	return strings.Join(as, ",")
}

// startWorker starts a worker, armed with failpoints fp when not empty.
func (r *run) startWorker(fp string) string {
	r.nextW++
	id := fmt.Sprintf("worker-%d", r.nextW)
	var env []string
	if fp != "" {
		env = []string{"WEIR_FAILPOINTS=" + fp}
	}
	r.workers[id] = proc.Start(r.t, r.dir, r.bin, id, env, "worker", "--coordinator", r.grpcAddrs(), "--slots", "4", "--id", id, "--allowed-paths", r.storage)
	return id
}

func (r *run) anyWorker() string { return r.anyWorkerExcept("") }

func (r *run) anyWorkerExcept(not string) string {
	var ids []string
	for id, p := range r.workers {
		if id != not && !p.Exited() {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		r.t.Fatal("no live worker")
	}
	// Map order is random; the seeded choice needs a stable order.
	slices.Sort(ids)
	return ids[r.rng.IntN(len(ids))]
}

// superviseCoordinators starts again every coordinator that exited: a
// leader that lost its lease (an etcd outage longer than the TTL) stops
// at once, and a supervisor — this — starts it again, as a standby.
func (r *run) superviseCoordinators() {
	for _, co := range r.coords {
		if co.p.Exited() {
			code, _ := co.p.Wait(time.Second)
			r.record("   %s exited with %d; starting it again", co.name, code)
			r.startCoordinator(co)
		}
	}
}

// leader returns the leading coordinator, waiting for an election.
func (r *run) leader() *coord {
	var lead *coord
	proc.Eventually(r.t, 60*time.Second, func() (bool, string) {
		r.superviseCoordinators()
		for _, co := range r.coords {
			if co.p.Exited() {
				continue
			}
			h, err := healthz(co.http)
			if err == nil && h != "standby" {
				lead = co
				return true, ""
			}
		}
		return false, "no leader"
	})
	return lead
}

// waitRecovered waits until the job runs and has completed a checkpoint
// after `after` completed ones: the system recovered from the last fault.
// Crashed armed workers are replaced on the way.
func (r *run) waitRecovered(job string, after int) {
	r.t.Helper()
	proc.Eventually(r.t, 3*time.Minute, func() (bool, string) {
		for id, p := range r.workers {
			if p.Exited() {
				code, _ := p.Wait(time.Second)
				delete(r.workers, id)
				r.record("   %s exited with %d; starting a replacement", id, code)
				r.startWorker("")
			}
		}
		r.superviseCoordinators()
		if r.kafkaP.Exited() {
			r.t.Fatal("the broker exited")
		}
		lead := r.leader()
		out, code := r.run(lead, "status", job, "-o", "json")
		var j struct {
			State string `json:"state"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &j) != nil {
			return false, out
		}
		if j.State == "FAILED" || j.State == "CANCELLED" {
			r.t.Fatalf("job %s ended: %s", job, out)
		}
		n := r.completedCheckpoints(job)
		return j.State == "RUNNING" && n > after, fmt.Sprintf("job %s, %d checkpoints completed (want > %d)", j.State, n, after)
	})
}

// completedCheckpoints is the job's count of completed checkpoints (-1
// when it cannot be read).
func (r *run) completedCheckpoints(job string) int {
	for _, co := range r.coords {
		if co.p.Exited() {
			continue
		}
		out, code := r.run(co, "checkpoints", job, "-o", "json")
		var cs struct {
			Counts struct {
				Completed int `json:"completed"`
			} `json:"counts"`
			Latest *struct {
				ID int `json:"id"`
			} `json:"latest"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &cs) == nil {
			// Counts restart with a new leader; the latest id does not.
			if cs.Latest != nil {
				return cs.Latest.ID
			}
			return 0
		}
	}
	return -1
}

// verify waits until weir verify finds the output exact (0 lost, 0
// duplicated, 0 wrong) or it stops changing, and fails the test unless it
// is exact.
func (r *run) verify(job string, seed uint64, events int) accesslog.Report {
	var v accesslog.Report
	var last string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := r.run(r.leader(), "verify", "ip-visits", "--brokers", r.kafka, "--topic", "ip-visits",
			"--events", strconv.Itoa(events), "--seed", strconv.FormatUint(seed, 10), "--partitions", "4", "--idle", "1s", "-o", "json")
		v = accesslog.Report{}
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&v); err == nil && v.OK {
			return v
		}
		if time.Now().After(deadline) {
			if out != last {
				r.t.Logf("last verify: %s", out)
			}
			r.t.Errorf("seed %d: not exactly once: matched %d, lost %d, duplicated %d, wrong %d, unexpected %d (job %s)",
				seed, v.Matched, v.Lost, v.Duplicated, v.Wrong, v.Unexpected, job)
			return v
		}
		last = out
		time.Sleep(2 * time.Second)
	}
}

// run runs a weir verb against a coordinator (nil: none needed).
func (r *run) run(co *coord, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := []string{"KAFKA_BROKERS=" + r.kafka, "CHECKPOINT_INTERVAL=1s"}
	if co != nil {
		env = append(env, "WEIR_COORDINATOR=http://"+co.http)
	}
	return proc.Run(r.t, ctx, r.bin, env, args...)
}

func (r *run) weir(co *coord, args ...string) (string, int) { return r.run(co, args...) }

// readOutput reads topic ip-visits with franz-go, read_committed: how many
// records, and how many distinct (ip, window_start).
func readOutput(t *testing.T, broker string) (records, distinct int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("ip-visits"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	idle := time.Now()
	for time.Since(idle) < 3*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			var w struct {
				IP          string `json:"ip"`
				WindowStart int64  `json:"window_start"`
			}
			if json.Unmarshal(rec.Value, &w) == nil {
				seen[w.IP+"/"+strconv.FormatInt(w.WindowStart, 10)] = true
			}
		})
		if n > 0 {
			records += n
			idle = time.Now()
		}
	}
	return records, len(seen)
}

// failpointBinary builds weir with the failpoints build tag, once.
func failpointBinary(t *testing.T) string {
	t.Helper()
	if fpBin != "" {
		return fpBin
	}
	dir, err := os.MkdirTemp("", "weir-failpoints-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "weir")
	cmd := exec.Command("go", "build", "-tags", "failpoints", "-o", path, "./cmd/weir")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags failpoints: %v\n%s", err, out)
	}
	fpBin = path
	return path
}

var fpBin string

// healthz returns a coordinator's role: "standby", or "" for the leader.
func healthz(addr string) (string, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + addr + "/healthz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", resp.Status)
	}
	var h struct {
		Role string `json:"role"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h.Role, err
}
