package proc

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/tlsconf"
)

// Cluster is a multi-process weir cluster for one test: a development
// broker (weir dev kafka), one coordinator with file:// checkpoint storage
// and workers, each a process on free 127.0.0.1 ports with its log in the
// artifact directory. The coordinator and the workers run with the
// cluster's mutual TLS, as weir dev does: a CA made for the test signs the
// certificate they share.
type Cluster struct {
	T         *testing.T
	Bin, Dir  string
	KafkaAddr string
	GRPCAddr  string
	HTTPAddr  string
	// Storage is the checkpoint storage root, a local directory.
	Storage string
	// Allowed is the directory the processes' --allowed-paths names: it
	// holds Storage, and a test's file sinks go below it.
	Allowed string
	// KafkaDataDir is the broker's --data-dir.
	KafkaDataDir string
	Kafka        *Process
	Coordinator  *Process
	// Workers by id, killed ones included.
	Workers map[string]*Process
	API     *api.Client
	// CA signed TLS, the certificate every process presents.
	CA  *tlsconf.CA
	TLS tlsconf.Files
}

// StartCluster starts a broker, a coordinator and workers worker-1 …
// worker-n with slots slots each, and waits until they are registered.
func StartCluster(t *testing.T, bin string, workers, slots int) *Cluster {
	t.Helper()
	c := &Cluster{
		T: t, Bin: bin, Dir: ArtifactDir(t),
		KafkaAddr: FreeAddr(t), GRPCAddr: FreeAddr(t), HTTPAddr: FreeAddr(t),
		Allowed:      t.TempDir(),
		KafkaDataDir: filepath.Join(t.TempDir(), "kafka"),
		Workers:      map[string]*Process{},
	}
	c.Storage = filepath.Join(c.Allowed, "checkpoints")
	c.CA, c.TLS = newPKI(t)
	c.API = api.NewClient("http://" + c.HTTPAddr)
	c.Kafka = Start(t, c.Dir, c.Bin, "kafka", nil,
		"dev", "kafka", "--addr", c.KafkaAddr, "--data-dir", c.KafkaDataDir)
	coArgs := []string{"coordinator", "--grpc-addr", c.GRPCAddr, "--http-addr", c.HTTPAddr,
		"--checkpoint-storage", "file://" + c.Storage, "--allowed-paths", c.Allowed, "--insecure"}
	c.Coordinator = Start(t, c.Dir, c.Bin, "coordinator", nil, append(coArgs, c.TLSArgs()...)...)
	for i := 1; i <= workers; i++ {
		c.StartWorker(fmt.Sprintf("worker-%d", i), slots, nil)
	}
	c.WaitWorkers(workers)
	return c
}

// TLSArgs are the flags that give a coordinator or a worker the cluster's
// certificate: a worker started by hand needs them to register.
func (c *Cluster) TLSArgs() []string {
	return []string{"--tls-cert", c.TLS.Cert, "--tls-key", c.TLS.Key, "--tls-ca", c.TLS.CA}
}

// newPKI makes a CA for the test and one certificate for 127.0.0.1 and
// the host's names, which every process of the cluster presents.
func newPKI(t *testing.T) (*tlsconf.CA, tlsconf.Files) {
	t.Helper()
	ca, err := tlsconf.NewCA("weir test cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.WriteFiles(t.TempDir(), "node", tlsconf.LocalHosts(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca, f
}

// KillKafka SIGKILLs the broker and starts it again on the same address
// and data directory; the new one logs to name.log.
func (c *Cluster) KillKafka(name string) {
	c.T.Helper()
	c.Kafka.Kill()
	c.Kafka = Start(c.T, c.Dir, c.Bin, name, nil,
		"dev", "kafka", "--addr", c.KafkaAddr, "--data-dir", c.KafkaDataDir)
}

// StartWorker starts one more worker process with the given id and extra
// environment; its log is <id>.log in the artifact directory.
func (c *Cluster) StartWorker(id string, slots int, env []string) *Process {
	c.T.Helper()
	args := []string{"worker", "--coordinator-grpc", c.GRPCAddr, "--slots", strconv.Itoa(slots), "--id", id, "--allowed-paths", c.Allowed}
	p := Start(c.T, c.Dir, c.Bin, id, env, append(args, c.TLSArgs()...)...)
	c.Workers[id] = p
	return p
}

// WaitWorkers waits until exactly n workers are registered.
func (c *Cluster) WaitWorkers(n int) {
	c.T.Helper()
	Eventually(c.T, 30*time.Second, func() (bool, string) {
		ws, err := c.API.Workers(c.Ctx())
		if err != nil {
			return false, err.Error()
		}
		return len(ws) == n, fmt.Sprintf("%d workers registered, want %d", len(ws), n)
	})
}

// Ctx is a context for one REST call (10 s).
func (c *Cluster) Ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c.T.Cleanup(cancel)
	return ctx
}

// Weir runs a client verb against the cluster (WEIR_COORDINATOR and
// KAFKA_BROKERS set) and returns its output and exit code.
func (c *Cluster) Weir(args ...string) (string, int) {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := []string{"WEIR_COORDINATOR=http://" + c.HTTPAddr, "KAFKA_BROKERS=" + c.KafkaAddr}
	return Run(c.T, ctx, c.Bin, env, args...)
}

// Submit runs weir submit with args (the spec file first) and returns the
// job id.
func (c *Cluster) Submit(args ...string) string {
	c.T.Helper()
	out, code := c.Weir(append([]string{"submit"}, args...)...)
	if code != 0 {
		c.T.Fatalf("submit %v: exit %d\n%s", args, code, out)
	}
	return strings.TrimSpace(out)
}

// Job fetches the job, failing the test when the coordinator does not
// answer.
func (c *Cluster) Job(id string) *api.Job {
	c.T.Helper()
	j, err := c.API.Job(c.Ctx(), id)
	if err != nil {
		c.T.Fatalf("GET job %s: %v", id, err)
	}
	return j
}

// WaitRunning waits until the job is RUNNING in an attempt of at least
// minAttempt, failing fast when it ends.
func (c *Cluster) WaitRunning(id string, minAttempt int64, timeout time.Duration) *api.Job {
	c.T.Helper()
	var j *api.Job
	Eventually(c.T, timeout, func() (bool, string) {
		j = c.Job(id)
		switch j.State {
		case "FAILED", "CANCELLED", "FINISHED":
			c.T.Fatalf("job %s ended %s: %s", id, j.State, j.FailureCause)
		}
		return j.State == "RUNNING" && j.Attempt >= minAttempt,
			fmt.Sprintf("job %s is %s in attempt %d (want RUNNING in attempt >= %d) %s", id, j.State, j.Attempt, minAttempt, j.Message)
	})
	return j
}

// WaitEnded waits for the job to finish, fail or be cancelled.
func (c *Cluster) WaitEnded(id string, timeout time.Duration) *api.Job {
	c.T.Helper()
	var j *api.Job
	Eventually(c.T, timeout, func() (bool, string) {
		j = c.Job(id)
		switch j.State {
		case "FAILED", "CANCELLED", "FINISHED":
			return true, ""
		}
		return false, fmt.Sprintf("job %s is %s in attempt %d %s", id, j.State, j.Attempt, j.Message)
	})
	return j
}

// Checkpoints fetches the job's checkpoint statistics.
func (c *Cluster) Checkpoints(id string) *api.Checkpoints {
	c.T.Helper()
	cs, err := c.API.Checkpoints(c.Ctx(), id)
	if err != nil {
		c.T.Fatalf("GET checkpoints of %s: %v", id, err)
	}
	return cs
}

// WaitCheckpoint waits until a periodic checkpoint taken in the given
// attempt, newer than after, has completed, and returns it.
func (c *Cluster) WaitCheckpoint(id string, attempt, after int64, timeout time.Duration) api.CheckpointStats {
	c.T.Helper()
	var got api.CheckpointStats
	Eventually(c.T, timeout, func() (bool, string) {
		cs := c.Checkpoints(id)
		for _, h := range cs.History {
			if h.Status == "COMPLETED" && !h.Savepoint && h.Attempt == attempt && h.ID > after {
				got = h
				return true, ""
			}
		}
		return false, fmt.Sprintf("no checkpoint after %d completed in attempt %d: counts %+v, job %s",
			after, attempt, cs.Counts, c.Job(id).State)
	})
	return got
}
