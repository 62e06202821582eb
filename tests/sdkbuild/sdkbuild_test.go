// Package sdkbuild is the acceptance test of the custom-build flow
// (docs/sdk-build.md): write an operator module in a directory outside the
// repository, `weir build --with` it, run the custom binary as `weir dev`,
// submit a job that uses the operator, and read its output from Kafka; and
// a job whose operator no worker carries is refused at submit.
package sdkbuild

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// The operator module, as docs/sdk-build.md has a user write it: it counts
// the records of each key and tags every record with the count so far and
// the tag from its config.
const (
	modulePath = "example.com/myop"
	operatorGo = `// Package myop registers example.myop.
package myop

import (
	"github.com/weir-stream/weir/sdk"
)

// Config is example.myop's config.
type Config struct {
	Tag string ` + "`json:\"tag\"`" + `
}

// Validate implements sdk.Validator.
func (c Config) Validate() error {
	if c.Tag == "" {
		return sdk.ConfigError("tag", "is required")
	}
	return nil
}

type counter struct {
	tag  string
	seen *sdk.Value[int64]
}

func (c *counter) Open(ctx *sdk.OpenContext) (err error) {
	c.seen, err = sdk.NewValue(ctx, sdk.ValueDescriptor[int64]{Name: "seen"})
	return err
}

func (c *counter) ProcessElement(ctx *sdk.Context, in sdk.Record, out *sdk.Collector[sdk.Record]) error {
	n, _, err := c.seen.Get()
	if err != nil {
		return err
	}
	n++
	if err := c.seen.Update(n); err != nil {
		return err
	}
	return out.Emit(in.With("seen", n).With("tag", c.tag))
}

func (c *counter) OnTimer(*sdk.Context, sdk.Timer, *sdk.Collector[sdk.Record]) error { return nil }

func init() {
	sdk.RegisterProcess("example.myop", func(cfg Config) (sdk.ProcessFunction[sdk.Record, sdk.Record], error) {
		return &counter{tag: cfg.Tag}, nil
	})
}
`
)

var (
	buildOnce   sync.Once
	customPath  string
	buildOutput string
	buildErr    error
)

// repoRoot is the weir checkout this test belongs to.
func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// customBinary writes the operator module into a fresh directory outside
// the repository and builds a weir with it, once per test binary.
func customBinary(t *testing.T) string {
	t.Helper()
	bin := proc.Binary(t)
	root := repoRoot(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "weir-sdkbuild-")
		if err != nil {
			buildErr = err
			return
		}
		mod := filepath.Join(dir, "myop")
		if err := os.MkdirAll(mod, 0o755); err != nil {
			buildErr = err
			return
		}
		// go mod init, then require weir from its checkout: the steps
		// docs/sdk-build.md gives for a weir that is not published.
		gomod := fmt.Sprintf("module %s\n\ngo 1.26\n\nrequire github.com/weir-stream/weir v0.0.0\n\nreplace github.com/weir-stream/weir => %s\n", modulePath, root)
		if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
			buildErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(mod, "myop.go"), []byte(operatorGo), 0o644); err != nil {
			buildErr = err
			return
		}
		customPath = filepath.Join(dir, "weir-custom")
		// A backstop only: a first build compiles all of weir without
		// the build cache's help, on a loaded 2-core machine.
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "build", "--with", modulePath+"="+mod,
			"--with", "github.com/weir-stream/weir="+root, "-o", customPath)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		buildOutput = string(out)
		if err != nil {
			buildErr = fmt.Errorf("weir build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return customPath
}

type versionJSON struct {
	Weir      string   `json:"weir"`
	Main      string   `json:"main"`
	With      []string `json:"with"`
	Operators []struct {
		ID, Kind, Module, Version string
	} `json:"operators"`
}

// TestCustomBuildOnDev is the acceptance test: the custom binary
// is a complete weir that runs as dev (coordinator, worker, broker) and
// runs the module's operator, with keyed state, into Kafka.
func TestCustomBuildOnDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a weir binary and runs weir dev")
	}
	custom := customBinary(t)
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		return c
	}

	out, code := proc.Run(t, ctx(), custom, nil, "version", "-o", "json")
	var v versionJSON
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("weir version -o json: exit %d, %v\n%s", code, err, out)
	}
	if len(v.Operators) != 1 || v.Operators[0].ID != "example.myop" || v.Operators[0].Kind != "process" || v.Operators[0].Module != modulePath ||
		!strings.HasPrefix(v.Operators[0].Version, "v0.0.0-local.") || len(v.With) != 1 || v.With[0] != modulePath+"@"+v.Operators[0].Version ||
		!strings.HasPrefix(v.Weir, "v0.0.0-local.") || v.Main == "github.com/weir-stream/weir" {
		t.Fatalf("weir version -o json of the custom binary:\n%s", out)
	}
	out, _ = proc.Run(t, ctx(), custom, nil, "version")
	if !strings.Contains(out, "example.myop (process, example.com/myop v0.0.0-local.") {
		t.Errorf("weir version does not list the operator:\n%s", out)
	}

	dir := proc.ArtifactDir(t)
	if err := os.WriteFile(filepath.Join(dir, "build.log"), []byte(buildOutput), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr, grpcAddr, kafkaAddr, etcdAddr := proc.FreeAddr(t), proc.FreeAddr(t), proc.FreeAddr(t), proc.FreeAddr(t)
	dataDir := t.TempDir()
	dev := proc.Start(t, dir, custom, "dev", nil, "dev", "--data-dir", dataDir,
		"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--kafka-addr", kafkaAddr, "--etcd-addr", etcdAddr,
		"--workers", "1", "--slots", "4")
	t.Cleanup(func() { copyLogs(filepath.Join(dataDir, "logs"), dir) })
	// weir dev writes its admin token before it starts any process.
	var token string
	proc.Eventually(t, time.Minute, func() (bool, string) {
		if dev.Exited() {
			t.Fatalf("weir dev exited:\n%s", readFile(dev.LogPath))
		}
		tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
		token = strings.TrimSpace(string(tok))
		return err == nil && token != "", fmt.Sprint(err)
	})
	cl := api.NewClient("http://"+httpAddr, api.WithToken(token))
	var workers []api.Worker
	proc.Eventually(t, 2*time.Minute, func() (bool, string) {
		if dev.Exited() {
			t.Fatalf("weir dev exited:\n%s", readFile(dev.LogPath))
		}
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, err := cl.Workers(c)
		if err != nil {
			return false, err.Error()
		}
		workers = ws
		return len(ws) == 1, fmt.Sprintf("%d workers", len(ws))
	})
	if ops := workers[0].Operators; len(ops) != 1 || ops[0].ID != "example.myop" || ops[0].Version != v.Operators[0].Version ||
		workers[0].Version != v.Weir || workers[0].GoVersion == "" {
		t.Fatalf("the worker does not report its build: %+v", workers[0])
	}

	const records = 300
	job := filepath.Join(t.TempDir(), "job.yaml")
	spec := fmt.Sprintf(`name: myop
parallelism: 2
restart: {strategy: none}
pipeline:
  - source: {datagen: {count: %d, seed: 7}}
  - key_by: ip
  - process: {operator: example.myop, config: {tag: custom}}
  - sink: {kafka: {brokers: ["%s"], topic: myop-out}}
`, records, kafkaAddr)
	if err := os.WriteFile(job, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"WEIR_COORDINATOR=http://" + httpAddr, "WEIR_TOKEN=" + token}
	out, code = proc.Run(t, ctx(), custom, env, "submit", job)
	if code != 0 {
		t.Fatalf("weir submit: exit %d\n%s", code, out)
	}
	id := strings.TrimSpace(out)
	proc.Eventually(t, 3*time.Minute, func() (bool, string) {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		j, err := cl.Job(c, id)
		if err != nil {
			return false, err.Error()
		}
		if j.State == "FAILED" || j.State == "CANCELED" {
			t.Fatalf("job %s: %s %s", id, j.State, j.FailureCause)
		}
		return j.State == "FINISHED", j.State + " " + j.Message
	})

	// Every record came through the operator once, and per key the counts
	// are 1, 2, … n (in some order: the sink spreads a key's records over
	// the topic's partitions): its keyed state worked.
	got := readTopic(t, kafkaAddr, "myop-out", records)
	perKey := map[string][]int64{}
	for _, r := range got {
		var m struct {
			IP   string `json:"ip"`
			Seen int64  `json:"seen"`
			Tag  string `json:"tag"`
		}
		if err := json.Unmarshal(r, &m); err != nil || m.IP == "" || m.Tag != "custom" {
			t.Fatalf("output record %s: %v", r, err)
		}
		perKey[m.IP] = append(perKey[m.IP], m.Seen)
	}
	if len(got) != records {
		t.Fatalf("%d output records, want %d", len(got), records)
	}
	for ip, seen := range perKey {
		slices.Sort(seen)
		for i, n := range seen {
			if n != int64(i+1) {
				t.Fatalf("key %s: counts %v, want 1..%d", ip, seen, len(seen))
			}
		}
	}
	t.Logf("%d records over %d keys through example.myop", len(got), len(perKey))
}

// TestSubmitRefusedWithoutOperator: a coordinator built with the operator
// and a stock worker without it: submit fails at once naming the operator
// and the worker; a job naming an operator the coordinator lacks too is
// refused by name. Nothing is created, nothing waits in SCHEDULING.
func TestSubmitRefusedWithoutOperator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a weir binary and runs a cluster")
	}
	custom := customBinary(t)
	stock := proc.Binary(t)
	dir := proc.ArtifactDir(t)
	httpAddr, grpcAddr := proc.FreeAddr(t), proc.FreeAddr(t)
	proc.Start(t, dir, custom, "coordinator", nil, "coordinator", "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
		"--checkpoint-storage", "file://"+t.TempDir(), "--insecure")
	proc.Start(t, dir, stock, "worker-stock", nil, "worker", "--coordinator", grpcAddr, "--slots", "4", "--id", "worker-stock")
	cl := api.NewClient("http://" + httpAddr)
	proc.Eventually(t, time.Minute, func() (bool, string) {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, err := cl.Workers(c)
		if err != nil {
			return false, err.Error()
		}
		if len(ws) == 1 && len(ws[0].Operators) != 0 {
			t.Fatalf("a stock worker reports operators: %+v", ws[0])
		}
		return len(ws) == 1, fmt.Sprintf("%d workers", len(ws))
	})

	submit := func(operator string) (string, int) {
		job := filepath.Join(t.TempDir(), "job.yaml")
		spec := "name: needs-op\npipeline:\n  - source: {datagen: {count: 10}}\n  - key_by: ip\n  - process: {operator: " + operator +
			", config: {tag: x}}\n  - sink: {discard: {}}\n"
		if err := os.WriteFile(job, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return proc.Run(t, c, stock, []string{"WEIR_COORDINATOR=http://" + httpAddr}, "submit", job)
	}
	out, code := submit("example.myop")
	if code != 1 || !strings.Contains(out, "operator example.myop is on no worker (worker worker-stock lacks it)") ||
		!strings.Contains(out, "pipeline[2].process.operator: operator example.myop is on no worker; worker worker-stock lacks it") {
		t.Fatalf("submit of a job whose operator no worker has: exit %d, want 1 naming the operator and worker-stock\n%s", code, out)
	}
	out, code = submit("example.nope")
	if code != 1 || !strings.Contains(out, `pipeline[2].process.operator: no operator "example.nope" in this weir binary; it has example.myop`) {
		t.Fatalf("submit of a job naming an unknown operator: exit %d\n%s", code, out)
	}
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if jobs, err := cl.Jobs(c); err != nil || len(jobs) != 0 {
		t.Fatalf("refused jobs were created: %+v %v", jobs, err)
	}
}

// readTopic reads want records from a topic (or what is there after a
// minute without more).
func readTopic(t *testing.T, addr, topic string, want int) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out [][]byte
	deadline := time.Now().Add(time.Minute)
	for len(out) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r.Value) })
	}
	// Anything beyond want is a duplicate: give it a moment to show.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	fs := cl.PollFetches(ctx)
	cancel()
	fs.EachRecord(func(r *kgo.Record) { out = append(out, r.Value) })
	return out
}

func copyLogs(from, to string) {
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		if data, err := os.ReadFile(filepath.Join(from, e.Name())); err == nil {
			_ = os.WriteFile(filepath.Join(to, e.Name()), data, 0o644)
		}
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}
