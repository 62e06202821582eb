package command

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/worker"
	"github.com/weir-stream/weir/worker/builder"
)

// countSpec needs no Kafka: generated records, counted per IP per minute,
// discarded. ${JOB_NAME:-count} exercises env expansion.
const countSpec = `name: ${JOB_NAME:-count}
parallelism: 2
pipeline:
  - name: gen
    source:
      datagen:
        profile: access-log
        seed: 1
        count: 1000
      schema:
        ip: string
        ts: int
        url: string
        status: int
        bytes: int
      event_time:
        field: ts
        max_out_of_orderness: 5s
  - name: by-ip
    key_by: ip
  - name: per-minute
    window:
      tumbling: 1m
      aggregates:
        count: count()
  - name: discard
    sink:
      discard: {}
`

// badSpec has several independent problems in different places.
const badSpec = `parallelism: 2
pipeline:
  - name: gen
    source:
      datagen:
        profile: access-log
        count: 10
      schema:
        ip: string
        ts: int
  - name: per-minute
    window:
      tumbling: soon
      aggregates:
        count: count()
  - name: out
    sink:
      discard: {}
`

func submit(t *testing.T, url string, args ...string) string {
	t.Helper()
	r := mustRun(t, 0, append([]string{"submit", "--coordinator", url}, args...)...)
	id := strings.TrimSpace(r.stdout)
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("submit should print only the job id, got %q", r.stdout)
	}
	return id
}

func jobsJSON(t *testing.T, url string) []api.JobSummary {
	t.Helper()
	var jobs []api.JobSummary
	decode(t, mustRun(t, 0, "jobs", "--coordinator", url, "-o", "json"), &jobs)
	return jobs
}

func TestSubmitValidSpecIsListed(t *testing.T) {
	_, url := startCoordinator(t)
	if jobs := jobsJSON(t, url); len(jobs) != 0 {
		t.Fatalf("fresh coordinator lists jobs: %+v", jobs)
	}
	id := submit(t, url, writeFile(t, "job.yaml", countSpec))

	jobs := jobsJSON(t, url)
	if len(jobs) != 1 || jobs[0].ID != id || jobs[0].Name != "count" {
		t.Fatalf("jobs -o json = %+v, want one job %s named count", jobs, id)
	}

	r := mustRun(t, 0, "jobs", "--coordinator", url)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("jobs table: want header and one row\n%s", r)
	}
	for _, h := range []string{"ID", "NAME", "STATE", "ATTEMPT", "TASKS", "SUBMITTED"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("jobs table header lacks %s: %q", h, lines[0])
		}
	}
	if f := strings.Fields(lines[1]); len(f) < 5 || f[0] != id || f[1] != "count" || f[2] != jobs[0].State {
		t.Errorf("jobs table row = %q, want id %s, name count, state %s", lines[1], id, jobs[0].State)
	}
}

func TestSubmitInvalidSpecPrintsEveryErrorAndSubmitsNothing(t *testing.T) {
	_, url := startCoordinator(t)
	path := writeFile(t, "bad.yaml", badSpec)
	r := mustRun(t, 1, "submit", "--coordinator", url, path)
	if r.stdout != "" {
		t.Errorf("nothing belongs on stdout on failure:\n%s", r)
	}
	for _, want := range []string{
		path + " is not a valid job spec",
		"name: required",
		"pipeline[1].window.tumbling: ",
		`"soon"`,
		"pipeline[1].inputs: ",
		"pipeline[1].window: windows need event time",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q\n%s", want, r)
		}
	}
	if jobs := jobsJSON(t, url); len(jobs) != 0 {
		t.Fatalf("an invalid spec was submitted: %+v", jobs)
	}
}

func TestSubmitMissingFile(t *testing.T) {
	_, url := startCoordinator(t)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	r := mustRun(t, 1, "submit", "--coordinator", url, missing)
	if !strings.Contains(r.stderr, missing) {
		t.Errorf("error does not name the file\n%s", r)
	}
	if jobs := jobsJSON(t, url); len(jobs) != 0 {
		t.Fatalf("jobs after a failed submit: %+v", jobs)
	}
}

func TestSubmitParallelismOverride(t *testing.T) {
	_, url := startCoordinator(t)
	id := submit(t, url, writeFile(t, "job.yaml", countSpec), "-p", "3")
	var j api.Job
	decode(t, mustRun(t, 0, "status", "--coordinator", url, "-o", "json", id), &j)
	if len(j.Vertices) == 0 {
		t.Fatalf("status -o json has no vertices: %+v", j)
	}
	for _, v := range j.Vertices {
		if v.Parallelism != 3 {
			t.Errorf("vertex %s parallelism %d, want 3 (-p 3)", v.ID, v.Parallelism)
		}
	}

	// --parallelism is the long form; a spec without the field gets it added.
	noPar := strings.Replace(countSpec, "parallelism: 2\n", "", 1)
	id = submit(t, url, writeFile(t, "job.yaml", noPar), "--parallelism", "5")
	decode(t, mustRun(t, 0, "status", "--coordinator", url, "-o", "json", id), &j)
	for _, v := range j.Vertices {
		if v.Parallelism != 5 {
			t.Errorf("vertex %s parallelism %d, want 5 (--parallelism 5)", v.ID, v.Parallelism)
		}
	}

	for _, p := range []string{"0", "-1"} {
		r := mustRun(t, 2, "submit", "--coordinator", url, writeFile(t, "job.yaml", countSpec), "-p", p)
		if !strings.Contains(r.stderr, "--parallelism") {
			t.Errorf("-p %s: error does not name the flag\n%s", p, r)
		}
	}
	mustRun(t, 2, "submit", "--coordinator", url, writeFile(t, "job.yaml", countSpec), "-p", "many")
	if jobs := jobsJSON(t, url); len(jobs) != 2 {
		t.Fatalf("want the 2 valid submissions only, got %+v", jobs)
	}
}

func TestSubmitExpandsEnvironment(t *testing.T) {
	_, url := startCoordinator(t)
	path := writeFile(t, "job.yaml", countSpec)

	submit(t, url, path) // ${JOB_NAME:-count} → default
	t.Setenv("JOB_NAME", "from-env")
	submit(t, url, path)
	t.Setenv("JOB_NAME", "") // set but empty: the default applies
	submit(t, url, path)

	var names []string
	for _, j := range jobsJSON(t, url) {
		names = append(names, j.Name)
	}
	// Newest first; the first and last submissions used the default.
	if got := strings.Join(names, ","); got != "count,from-env,count" {
		t.Fatalf("job names %q, want count, from-env and count", got)
	}

	// A variable without a default that is not set fails, naming it.
	noDefault := strings.Replace(countSpec, "${JOB_NAME:-count}", "${WEIR_TEST_UNSET_VAR}", 1)
	r := mustRun(t, 1, "submit", "--coordinator", url, writeFile(t, "job.yaml", noDefault))
	if !strings.Contains(r.stderr, "WEIR_TEST_UNSET_VAR") {
		t.Errorf("error does not name the variable\n%s", r)
	}
}

func TestStatus(t *testing.T) {
	_, url := startCoordinator(t)
	id := submit(t, url, writeFile(t, "job.yaml", countSpec))

	var j api.Job
	decode(t, mustRun(t, 0, "status", id, "--coordinator", url, "-o", "json"), &j)
	if j.ID != id || j.Name != "count" || j.State == "" {
		t.Fatalf("status -o json = %+v", j)
	}
	if j.State != "SCHEDULING" {
		t.Fatalf("without workers the job should wait in SCHEDULING, is %s", j.State)
	}
	subtasks := 0
	for _, v := range j.Vertices {
		if v.Parallelism != 2 {
			t.Errorf("vertex %s parallelism %d, want the spec's 2", v.ID, v.Parallelism)
		}
		subtasks += len(v.Subtasks)
	}

	r := mustRun(t, 0, "status", id, "--coordinator", url)
	for _, want := range []string{"Job:       " + id + " (count)", "State:     SCHEDULING (attempt", "Submitted: ",
		"VERTEX", "SUBTASK", "WORKER", "BACKPRESSURED_MS"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status table lacks %q\n%s", want, r)
		}
	}
	if j.Message != "" && !strings.Contains(r.stdout, "Message:   "+j.Message) {
		t.Errorf("status table lacks the job's message %q\n%s", j.Message, r)
	}
	// One table row per subtask, after the header.
	table := r.stdout[strings.Index(r.stdout, "VERTEX"):]
	if rows := len(strings.Split(strings.TrimSpace(table), "\n")) - 1; rows != subtasks {
		t.Errorf("status table has %d subtask rows, json has %d subtasks\n%s", rows, subtasks, r)
	}

	r = mustRun(t, 1, "status", "no-such-job", "--coordinator", url)
	if !strings.Contains(r.stderr, "no-such-job") || !strings.Contains(strings.ToLower(r.stderr), "not found") {
		t.Errorf("unknown job: want a message naming it and saying it is not found\n%s", r)
	}
	mustRun(t, 2, "status", id, "--coordinator", url, "-o", "yaml")
}

func TestCancel(t *testing.T) {
	_, url := startCoordinator(t)
	id := submit(t, url, writeFile(t, "job.yaml", countSpec))

	r := mustRun(t, 0, "cancel", id, "--coordinator", url)
	if strings.TrimSpace(r.stdout) != "cancelling "+id {
		t.Errorf("cancel output %q", r.stdout)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		var j api.Job
		decode(t, mustRun(t, 0, "status", id, "--coordinator", url, "-o", "json"), &j)
		return j.State == "CANCELLED", j.State
	})

	r = mustRun(t, 1, "cancel", id, "--coordinator", url)
	if !strings.Contains(r.stderr, "job "+id+" is CANCELLED and cannot be cancelled") {
		t.Errorf("second cancel: want the coordinator's conflict message\n%s", r)
	}
	r = mustRun(t, 1, "cancel", "no-such-job", "--coordinator", url)
	if !strings.Contains(r.stderr, "no-such-job") {
		t.Errorf("cancel of an unknown job should name it\n%s", r)
	}
}

func TestJobsOutputFormats(t *testing.T) {
	_, url := startCoordinator(t)
	r := mustRun(t, 0, "jobs", "--coordinator", url)
	if strings.TrimSpace(r.stdout) != strings.Join(strings.Fields("ID  NAME  STATE  ATTEMPT  TASKS  SUBMITTED"), "  ") {
		t.Errorf("empty jobs table should be the header only\n%s", r)
	}
	if r := mustRun(t, 0, "jobs", "--coordinator", url, "-o", "json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty jobs -o json should be [], got %q", r.stdout)
	}
	mustRun(t, 0, "jobs", "--coordinator", url, "--output", "table")
	r = mustRun(t, 2, "jobs", "--coordinator", url, "-o", "yaml")
	if !strings.Contains(r.stderr, "yaml") || r.stdout != "" {
		t.Errorf("-o yaml: want a usage error naming the format\n%s", r)
	}
}

func TestWorkers(t *testing.T) {
	co, url := startCoordinator(t)

	var ws []api.Worker
	decode(t, mustRun(t, 0, "workers", "--coordinator", url, "-o", "json"), &ws)
	if len(ws) != 0 {
		t.Fatalf("no worker started, got %+v", ws)
	}
	r := mustRun(t, 0, "workers", "--coordinator", url)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("empty workers table should be the header only\n%s", r)
	}
	mustRun(t, 2, "workers", "--coordinator", url, "-o", "yaml")

	w, err := worker.New(worker.Config{
		CoordinatorAddr: co.GRPCAddr(), Slots: 3, ID: "w-test",
		DataAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Builder: builder.New(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	eventually(t, 10*time.Second, func() (bool, string) {
		decode(t, mustRun(t, 0, "workers", "--coordinator", url, "-o", "json"), &ws)
		return len(ws) == 1, "workers: " + itoaWorkers(ws)
	})
	if ws[0].ID != "w-test" || ws[0].Slots != 3 {
		t.Fatalf("workers -o json = %+v", ws)
	}
	r = mustRun(t, 0, "workers", "--coordinator", url)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("workers table: want header and one row\n%s", r)
	}
	for _, h := range []string{"ID", "STATE", "SLOTS", "DATA", "HTTP", "HEARTBEAT", "VERSION", "OPERATORS"} {
		if !strings.Contains(lines[0], h) {
			t.Errorf("workers header lacks %s: %q", h, lines[0])
		}
	}
	// The worker's build: this test binary's weir version, no user operators.
	if f := strings.Fields(lines[1]); f[0] != "w-test" || f[2] != "0/3" || !strings.Contains(lines[1], " ago ") || ws[0].Version == "" ||
		f[len(f)-2] != ws[0].Version || f[len(f)-1] != "-" {
		t.Errorf("workers row = %q, want w-test with 0/3 slots, a heartbeat age, its version and - for no operators", lines[1])
	}
}

func itoaWorkers(ws []api.Worker) string {
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	return "[" + strings.Join(ids, " ") + "]"
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"loadgen", "bogus"},
		{"verify", "bogus"},
		{"dev", "bogus"},
		{"jobs", "--bogus"},
		{"jobs", "extra"},
		{"workers", "extra"},
		{"status"},
		{"status", "a", "b"},
		{"cancel"},
		{"submit"},
		{"submit", "a.yaml", "b.yaml"},
		{"coordinator", "--heartbeat-interval", "soon"},
		{"worker", "--slots", "many"},
		{"worker", "--allowed-paths", "ftp://bucket/x"},
		{"coordinator", "--allowed-paths", "file://host/x", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"},
		{"loadgen", "access-log", "--events", "0"},
		{"loadgen", "access-log", "--events", "-1"},
		{"loadgen", "access-log", "--partitions", "0"},
		{"verify", "ip-visits", "--events", "0"},
		{"dev", "--workers", "0"},
		{"dev", "--slots", "0"},
		{"dev", "--log-level", "loud"},
		{"coordinator", "--log-level", "loud"},
		{"coordinator", "--schedule-timeout", "0s", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--insecure"},
		{"coordinator", "--heartbeat-interval", "5s", "--heartbeat-timeout", "1s", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--insecure"},
		{"worker", "--log-level", "loud"},
	} {
		r := run(t, args...)
		if r.code != ExitUsage {
			t.Errorf("weir %s: want exit 2, got %s", strings.Join(args, " "), r)
		}
		if !strings.HasPrefix(r.stderr, "error: ") {
			t.Errorf("weir %s: want the error on stderr, got %s", strings.Join(args, " "), r)
		}
	}
	r := mustRun(t, 2, "bogus")
	if !strings.Contains(r.stderr, `unknown command "bogus"`) {
		t.Errorf("unknown verb: %s", r)
	}
	r = mustRun(t, 2, "jbos")
	if !strings.Contains(r.stderr, "jobs") {
		t.Errorf("a misspelt verb should suggest the right one: %s", r)
	}
	// Bare group verbs and --help print help and succeed.
	for _, args := range [][]string{{}, {"loadgen"}, {"verify"}, {"--help"}, {"jobs", "--help"}} {
		r := mustRun(t, 0, args...)
		if !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("weir %s: want help on stdout, got %s", strings.Join(args, " "), r)
		}
	}
}

func TestCoordinatorFromEnvironment(t *testing.T) {
	_, url := startCoordinator(t)
	t.Setenv("WEIR_COORDINATOR", url)
	id := submit(t, url, writeFile(t, "job.yaml", countSpec))
	// No --coordinator: every client verb uses WEIR_COORDINATOR.
	if jobs := jobsJSON(t, url); len(jobs) != 1 {
		t.Fatalf("jobs: %+v", jobs)
	}
	var jobs []api.JobSummary
	decode(t, mustRun(t, 0, "jobs", "-o", "json"), &jobs)
	if len(jobs) != 1 || jobs[0].ID != id {
		t.Fatalf("jobs via WEIR_COORDINATOR = %+v", jobs)
	}
	mustRun(t, 0, "status", id)
	mustRun(t, 0, "workers")
	mustRun(t, 0, "submit", writeFile(t, "job.yaml", countSpec))
	mustRun(t, 0, "cancel", id)

	// A host:port without a scheme works too.
	t.Setenv("WEIR_COORDINATOR", strings.TrimPrefix(url, "http://"))
	mustRun(t, 0, "jobs")

	// --coordinator beats the environment.
	t.Setenv("WEIR_COORDINATOR", "http://"+deadAddr(t))
	mustRun(t, 0, "jobs", "--coordinator", url)
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCoordinatorUnreachable(t *testing.T) {
	addr := deadAddr(t)
	job := writeFile(t, "job.yaml", countSpec)
	for _, args := range [][]string{
		{"jobs"}, {"workers"}, {"status", "j1"}, {"cancel", "j1"}, {"submit", job}, {"jobs", "-o", "json"},
	} {
		args = append(args, "--coordinator", "http://"+addr)
		r := run(t, args...)
		if r.code != ExitFailed || !strings.Contains(r.stderr, addr) || r.stdout != "" {
			t.Errorf("weir %s: want exit 1 with a message naming %s, got %s", strings.Join(args, " "), addr, r)
		}
		// Once, without the client package's name (it said "api: GET
		// /api/v1/jobs: Get \"http://ADDR/api/v1/jobs\": …").
		if strings.Count(r.stderr, "http://"+addr) != 1 || strings.Contains(r.stderr, "api:") || !strings.Contains(r.stderr, "cannot reach the coordinator at http://"+addr) {
			t.Errorf("weir %s: want the coordinator named once, no package name: %s", strings.Join(args, " "), r)
		}
	}
	t.Setenv("WEIR_COORDINATOR", "http://"+addr)
	if r := run(t, "jobs"); r.code != ExitFailed || !strings.Contains(r.stderr, addr) {
		t.Errorf("weir jobs with WEIR_COORDINATOR: want exit 1 naming %s, got %s", addr, r)
	}
}

func TestSubmitSpecFileUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	_, url := startCoordinator(t)
	path := writeFile(t, "job.yaml", countSpec)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, 1, "submit", "--coordinator", url, path); !strings.Contains(r.stderr, path) {
		t.Errorf("error does not name the file\n%s", r)
	}
}

// TestCoordinatorAndWorkerVerbs runs `weir coordinator` and `weir worker`
// in this process: the worker registers, the client verbs see it, and an
// interrupt stops both with exit 0.
func TestCoordinatorAndWorkerVerbs(t *testing.T) {
	httpAddr, grpcAddr := deadAddr(t), deadAddr(t)
	type exit struct {
		name string
		r    result
	}
	done := make(chan exit, 2)
	start := func(name string, args ...string) {
		go func() {
			var out, errb bytes.Buffer
			code := execute(args, &out, &errb)
			done <- exit{name, result{code: code, stdout: out.String(), stderr: errb.String()}}
		}()
	}
	storage := t.TempDir()
	coPprof, wPprof := deadAddr(t), deadAddr(t)
	start("coordinator", "coordinator", "--http-addr", httpAddr, "--grpc-addr", grpcAddr,
		"--heartbeat-interval", "100ms", "--heartbeat-timeout", "2s", "--log-level", "info", "--log-format", "json", "--schedule-timeout", "1s",
		"--checkpoint-storage", "file://"+storage, "--allowed-paths", storage, "--insecure", "--pprof-addr", coPprof)
	// The worker takes most of its settings from a config file; the
	// command line overrides its slots.
	conf := writeFile(t, "worker.yaml", "coordinator-grpc: "+grpcAddr+"\nslots: 7\nid: w-verb\nallowed-paths: ["+storage+"]\n"+
		"data-addr: 127.0.0.1:0\nhttp-addr: 127.0.0.1:0\nlog-level: warn\npprof-addr: "+wPprof+"\n")
	start("worker", "worker", "--config", conf, "--slots", "2")

	url := "http://" + httpAddr
	var ws []api.Worker
	eventually(t, 20*time.Second, func() (bool, string) {
		select {
		case e := <-done:
			t.Fatalf("weir %s exited early: %s", e.name, e.r)
		default:
		}
		r := run(t, "workers", "--coordinator", url, "-o", "json")
		if r.code != 0 {
			return false, r.String()
		}
		decode(t, r, &ws)
		return len(ws) == 1, r.stdout
	})
	if ws[0].ID != "w-verb" || ws[0].Slots != 2 {
		t.Fatalf("workers = %+v, want w-verb with 2 slots", ws)
	}
	// Both serve Go's profiles on their --pprof-addr, and Go runtime and
	// process metrics on /metrics.
	for _, a := range []string{coPprof, wPprof} {
		body := httpGet(t, "http://"+a+"/debug/pprof/goroutine?debug=1")
		if !strings.Contains(body, "goroutine profile:") {
			t.Errorf("pprof on %s: %.200s", a, body)
		}
	}
	for _, u := range []string{url + "/metrics", "http://" + ws[0].HTTPAddr + "/metrics"} {
		body := httpGet(t, u)
		for _, m := range []string{"go_goroutines ", "go_memstats_heap_alloc_bytes ", "go_gc_duration_seconds", "process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds "} {
			if !strings.Contains(body, "\n"+m) {
				t.Errorf("%s lacks %s", u, m)
			}
		}
	}

	// --allowed-paths reaches the coordinator: a file sink outside it is
	// refused at submit, one inside it runs on the worker.
	sinkSpec := func(p string) string {
		return "name: sink\npipeline:\n  - name: gen\n    source: {datagen: {profile: sequence, count: 3}}\n" +
			"  - name: out\n    sink: {file: {path: \"" + p + "\"}}\n"
	}
	r := mustRun(t, 1, "submit", "--coordinator", url, writeFile(t, "evil.yaml", sinkSpec(filepath.Join(t.TempDir(), "keys"))))
	if !strings.Contains(r.stderr, "pipeline[1].sink.file.path") || !strings.Contains(r.stderr, "outside the allowed paths") {
		t.Errorf("a file sink outside --allowed-paths: %s", r)
	}
	out := filepath.Join(storage, "out.txt")
	id := submit(t, url, writeFile(t, "ok.yaml", sinkSpec(out)))
	eventually(t, 20*time.Second, func() (bool, string) {
		r := run(t, "status", id, "--coordinator", url, "-o", "json")
		data, _ := os.ReadFile(out)
		return strings.Contains(r.stdout, `"FINISHED"`) && strings.Count(string(data), "\n") == 3, r.stdout
	})

	// --schedule-timeout reaches the coordinator: a job that needs more
	// slots than the worker has fails after it.
	wide := submit(t, url, writeFile(t, "wide.yaml", "name: wide\nparallelism: 3\npipeline:\n  - name: gen\n    source: {datagen: {profile: sequence, count: 3}}\n"+
		"  - name: out\n    sink: {discard: {}}\n"))
	eventually(t, 20*time.Second, func() (bool, string) {
		r := run(t, "status", wide, "--coordinator", url, "-o", "json")
		return strings.Contains(r.stdout, `"FAILED"`) && strings.Contains(r.stdout, "scheduling timed out after 1s"), r.stdout
	})

	// Both commands are past signal.NotifyContext (they serve), so the
	// interrupt reaches them and not the test binary's default handler.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case e := <-done:
			if e.r.code != 0 {
				t.Errorf("weir %s after an interrupt: want exit 0, got %s", e.name, e.r)
			}
			want := map[string]string{
				"coordinator": "coordinator: REST API and web UI on " + url + ", workers connect to " + grpcAddr,
				"worker":      "worker w-verb: 2 slots, coordinator " + grpcAddr,
			}[e.name]
			if !strings.Contains(e.r.stdout, want) {
				t.Errorf("weir %s: stdout lacks %q: %s", e.name, want, e.r)
			}
			if e.name == "coordinator" {
				checkJSONLog(t, e.r.stderr, "coordinator started", "serving Go profiles without authentication")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("weir coordinator and weir worker did not stop within 20s of an interrupt")
		}
	}
}

// weir submit reads at most the coordinator's spec limit and says what the
// REST API says; it once read /dev/zero until it held 23 GB.
func TestSubmitOversizeSpec(t *testing.T) {
	_, url := startCoordinator(t)
	path := writeFile(t, "huge.yaml", "name: huge\n"+strings.Repeat("#", 2<<20)+"\n")
	r := mustRun(t, 1, "submit", "--coordinator", url, path)
	want := path + ": " + coordinator.SpecTooLarge(coordinator.DefaultMaxSpecBytes)
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q\n%s", want, r)
	}
	// A small file that ${VAR} expansion makes too big is refused the same way.
	t.Setenv("WEIR_TEST_BIG", strings.Repeat("x", 1<<20))
	path = writeFile(t, "expands.yaml", "name: ${WEIR_TEST_BIG}\n")
	r = mustRun(t, 1, "submit", "--coordinator", url, path)
	if !strings.Contains(r.stderr, coordinator.SpecTooLarge(coordinator.DefaultMaxSpecBytes)) {
		t.Errorf("expanded spec: stderr lacks the size error\n%s", r)
	}
	if jobs := jobsJSON(t, url); len(jobs) != 0 {
		t.Fatalf("an oversize spec was submitted: %+v", jobs)
	}
}

// Client verbs take a job's name where they take its id: the one job of
// that name that has not ended, else the one job of that name; several
// are an error listing them.
func TestJobByName(t *testing.T) {
	_, url := startCoordinator(t)
	t.Setenv("JOB_NAME", "by-name")
	job := writeFile(t, "job.yaml", countSpec)
	first := submit(t, url, job)
	r := mustRun(t, 0, "status", "--coordinator", url, "-o", "json", "by-name")
	if !strings.Contains(r.stdout, `"id": "`+first+`"`) {
		t.Fatalf("status by name: %s", r)
	}
	mustRun(t, 0, "checkpoints", "--coordinator", url, "by-name")
	second := submit(t, url, job)
	r = mustRun(t, 1, "status", "--coordinator", url, "by-name")
	if !strings.Contains(r.stderr, first) || !strings.Contains(r.stderr, second) || !strings.Contains(r.stderr, "give the id") {
		t.Fatalf("two live jobs of one name: %s", r)
	}
	if r := mustRun(t, 0, "cancel", "--coordinator", url, first); !strings.Contains(r.stdout, first) {
		t.Fatalf("cancel by id: %s", r)
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		r := run(t, "status", "--coordinator", url, "-o", "json", "by-name")
		return r.code == 0 && strings.Contains(r.stdout, `"id": "`+second+`"`), r.String()
	})
	if r := mustRun(t, 0, "cancel", "--coordinator", url, "by-name"); !strings.Contains(r.stdout, "cancelling "+second) {
		t.Fatalf("cancel by name: %s", r)
	}
	r = mustRun(t, 1, "status", "--coordinator", url, "no-such-job")
	if !strings.Contains(r.stderr, `job "no-such-job" not found: no job has that id or name`) {
		t.Fatalf("unknown: %s", r)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// checkJSONLog checks that every line of a --log-format json log is one
// JSON object with each key once, and that the messages want are there.
func checkJSONLog(t *testing.T, log string, want ...string) {
	t.Helper()
	msgs := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Errorf("log line is not a JSON object: %q", line)
			continue
		}
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			var v any
			if err == nil {
				err = dec.Decode(&v)
			}
			if err != nil {
				t.Errorf("log line %q: %v", line, err)
				break
			}
			if seen[k.(string)] {
				t.Errorf("log line has key %q twice: %s", k, line)
			}
			seen[k.(string)] = true
			if k == "msg" {
				msgs[v.(string)] = true
			}
		}
		if !seen["time"] || !seen["level"] || !seen["msg"] {
			t.Errorf("log line lacks time, level or msg: %s", line)
		}
	}
	for _, m := range want {
		if !msgs[m] {
			t.Errorf("no log line %q in\n%s", m, log)
		}
	}
}
