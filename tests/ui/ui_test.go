package ui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/chromedp"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/cluster"
	"github.com/weir-stream/weir/internal/registry"
	"github.com/weir-stream/weir/internal/tlsconf/tlstest"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// chromium finds the browser: $WEIR_CHROMIUM, else chromium on the PATH.
// Missing, the test fails in CI (CI=true; `make tools` installs it) and is
// skipped elsewhere with how to install it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WEIR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: install it with `make tools` (apt-get install -y chromium) or set WEIR_CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WEIR_UI_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts headless Chromium with a fresh profile and returns a tab
// context; everything is closed on cleanup.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// run runs chromedp actions with a deadline, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, ctx, what, chromedp.Steps(steps...))
}

// get runs one action with a deadline and returns its value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// count evaluates document.querySelectorAll(sel).length.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return get(t, ctx, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, "text of "+sel, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||''`, sel)))
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// click clicks the element, retrying when a refresh replaced it between
// finding and clicking it.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	var err error
	for range 20 {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = chromedp.Do(cctx, chromedp.Click(css(sel)))
		cancel()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("click %s: %v", sel, err)
}

// follow clicks a link and waits until the browser is at its href; a click
// that landed on an element a refresh had just replaced is repeated.
func follow(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	href := get(t, ctx, "href of "+sel, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{getAttribute(){return ''}}).getAttribute('href')`, sel)))
	if href == "" {
		t.Fatalf("no link %s", sel)
	}
	for range 10 {
		click(t, ctx, sel)
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if get(t, ctx, "hash", chromedp.Evaluate[string](`location.hash`)) == href {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Fatalf("clicking %s did not go to %s", sel, href)
}

// waitFor polls the page until cond holds (the page refreshes itself). On
// timeout it saves a screenshot and the page's text before failing.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			if s := current; s != nil {
				s.take("failed")
				t.Logf("page text at the timeout:\n%s", text(t, s.ctx, "main"))
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// current is the running test's shooter, for screenshots of failures.
var current *shooter

type shooter struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	mu   sync.Mutex
	shot []string
}

func (s *shooter) take(name string) {
	s.t.Helper()
	buf := get(s.t, s.ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	p := filepath.Join(s.dir, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.shot = append(s.shot, p)
	s.mu.Unlock()
	s.t.Logf("screenshot %s (%d bytes)", p, len(buf))
}

// copyToDocs copies the screenshots to docs/ui/ when WEIR_UI_DOCS=1.
func (s *shooter) copyToDocs() {
	if os.Getenv("WEIR_UI_DOCS") != "1" {
		return
	}
	_, file, _, _ := runtime.Caller(0)
	docs := filepath.Join(filepath.Dir(file), "..", "..", "docs", "ui")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for _, p := range s.shot {
		data, err := os.ReadFile(p)
		if err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(docs, filepath.Base(p)), data, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
}

// produce writes JSON records round robin over the topic's partitions
// until ctx ends, so the job has work and its sources have lag to show.
func produce(ctx context.Context, t *testing.T, addr, topic string, wg *sync.WaitGroup) {
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var batch []*sarama.ProducerMessage
			for range 20 {
				n++
				batch = append(batch, &sarama.ProducerMessage{Topic: topic,
					Value: sarama.StringEncoder(fmt.Sprintf(`{"ip": "10.0.0.%d", "path": "/p/%d", "bytes": %d, "ts": %d}`, n%50, n%7, n, time.Now().UnixMilli()))})
			}
			if err := p.SendMessages(batch); err != nil && ctx.Err() == nil {
				t.Logf("produce: %v", err)
			}
		}
	}()
}

// TestWebUI drives the status page in Chromium: every page loads, the
// checkpoint history grows without a reload, one checkpoint's detail
// opens, the back button returns, a lost worker shows up as a restart with
// its whole timeline, the Kafka page shows lag per partition, and the
// page is usable by keyboard. Screenshots of each page are saved.
func TestWebUI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and Chromium")
	}
	ctx := browser(t)
	// A user operator in the workers' binary (this test's): the overview
	// shows it in each worker's build.
	if err := registry.Register(registry.Entry{
		ID: "uitest.op", Kind: registry.KindProcess, Module: "example.com/uiops", Version: "v1.2.3",
		Check: func(spec.Config) error { return nil },
		New:   func(spec.Config, *dataflow.Context) (dataflow.Operator, error) { return nil, nil },
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Unregister("uitest.op") })
	// With the cluster's mutual TLS, as weir dev runs: no insecure banner
	// (TestWebUIRealProcesses runs without and sees it).
	c := cluster.New(t, cluster.Config{Workers: 3, Slots: 4, Kafka: true, HeartbeatTimeout: 10 * time.Second,
		TLS: tlstest.Source(t, tlstest.New(t).Cluster)})
	const topic = "access-log"
	c.CreateTopic(t, topic, 4)
	pctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	produce(pctx, t, c.KafkaAddr(), topic, &wg)
	t.Cleanup(func() { stop(); wg.Wait() })

	id := c.Submit(t, fmt.Sprintf(`name: ip-visits
parallelism: 2
checkpoint: {interval: 300ms, storage: "file://%s"}
restart: {strategy: fixed, attempts: 5, delay: 200ms}
pipeline:
  - name: access-log
    source:
      kafka: {brokers: ["${KAFKA_BROKERS}"], topic: %s}
      event_time: {field: ts, max_out_of_orderness: 1s, idle_timeout: 2s}
  - name: big
    filter: bytes > 10
  - name: by-ip
    key_by: ip
  - name: per-ip
    window:
      tumbling: 1s
      aggregates: {visits: count(), bytes: sum(bytes)}
  - name: out
    parallelism: 1
    sink: {discard: {}}
`, t.TempDir(), topic))
	c.WaitState(t, id, "RUNNING", 30*time.Second)
	base := "http://" + c.Coordinator().HTTPAddr()
	shots := &shooter{t: t, ctx: ctx, dir: artifactDir(t)}
	current = shots
	defer func() { current = nil }()
	defer shots.copyToDocs()

	// Overview: workers with slots and heartbeats, jobs by state.
	run(t, ctx, "open the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css(`#workers tbody tr[data-worker]`)))
	waitFor(t, 10*time.Second, "3 workers and the job listed", func() bool {
		return count(t, ctx, `#workers tbody tr[data-worker]`) == 3 && count(t, ctx, `#jobs a[href="#/jobs/`+id+`"]`) == 1
	})
	if s := text(t, ctx, `#workers tbody tr[data-worker="w1"]`); !strings.Contains(s, "ALIVE") || !strings.Contains(s, "/ 4") || !strings.Contains(s, "ago") {
		t.Fatalf("worker row %q", s)
	}
	// Slot sharing: the job at parallelism 2 holds 2 of the 12 slots,
	// one per subtask index, not one per subtask.
	waitFor(t, 10*time.Second, "2 of 12 slots used", func() bool {
		return strings.Contains(text(t, ctx, `#overview-cards`), "2 / 12")
	})
	if s := text(t, ctx, `#workers tbody tr[data-worker="w1"] td.build`); !strings.Contains(s, "(devel)") ||
		!strings.Contains(s, "uitest.op example.com/uiops v1.2.3") {
		t.Fatalf("worker build %q, want its weir version and uitest.op example.com/uiops v1.2.3", s)
	}
	if s := text(t, ctx, `#jobs-by-state`); !strings.Contains(s, "RUNNING") {
		t.Fatalf("jobs by state %q", s)
	}
	if n := count(t, ctx, `#insecure-banner`); n != 0 {
		t.Fatal("the insecure banner shows on a cluster with mutual TLS")
	}
	if s := text(t, ctx, `#overview-cards`); !strings.Contains(s, "mutual TLS") {
		t.Fatalf("overview cards %q, want cluster TLS shown on", s)
	}
	shots.take("overview")

	// Job: the graph as SVG with rates, and the subtasks.
	follow(t, ctx, `#jobs a[href="#/jobs/`+id+`"]`)
	run(t, ctx, "open the job", chromedp.WaitVisible(css(`#job-graph`)))
	j := c.Job(t, id)
	tasks := 0
	for _, v := range j.Vertices {
		tasks += v.Parallelism
	}
	waitFor(t, 15*time.Second, "the graph with rates and every subtask", func() bool {
		return count(t, ctx, `#job-graph g.vertex`) == len(j.Vertices) && count(t, ctx, `#job-graph g.edge-g`) == len(j.Vertices)-1 &&
			count(t, ctx, `#subtasks tbody tr`) == tasks && strings.Contains(text(t, ctx, `#job-graph g.vertex[data-vertex="access-log"]`), "/s")
	})
	if s := text(t, ctx, `#job-graph`); !strings.Contains(s, "×2") || !strings.Contains(s, "hash") || !strings.Contains(s, "backpressure") {
		t.Fatalf("graph text %q", s)
	}
	shots.take("job")

	// Checkpoints: counts, history growing without a reload, chart.
	follow(t, ctx, `nav.tabs a[href="#/jobs/`+id+`/checkpoints"]`)
	run(t, ctx, "open checkpoints", chromedp.WaitVisible(css(`#checkpoint-history`)))
	get(t, ctx, "marker", chromedp.Evaluate[int](`window.__noReload = 1`))
	var first int
	waitFor(t, 20*time.Second, "3 completed checkpoints in the history", func() bool {
		first = count(t, ctx, `#checkpoint-history tbody tr[data-checkpoint]`)
		return count(t, ctx, `#checkpoint-history .s-COMPLETED`) >= 3
	})
	waitFor(t, 20*time.Second, "the history to grow", func() bool {
		return count(t, ctx, `#checkpoint-history tbody tr[data-checkpoint]`) > first
	})
	if get(t, ctx, "marker", chromedp.Evaluate[int](`window.__noReload || 0`)) != 1 {
		t.Fatal("the page reloaded while refreshing")
	}
	// A savepoint taken from the page (a real button) lands in the history.
	click(t, ctx, `#take-savepoint`)
	waitFor(t, 20*time.Second, "the savepoint to complete", func() bool {
		return strings.Contains(text(t, ctx, `#savepoint-result`), "Savepoint requested") &&
			strings.Contains(text(t, ctx, `#latest-savepoint`), "COMPLETED")
	})
	if n := count(t, ctx, `#checkpoint-chart polyline`); n != 2 {
		t.Fatalf("chart has %d lines, want duration and size", n)
	}
	if s := text(t, ctx, `#checkpoint-counts`); !strings.Contains(s, "Completed") {
		t.Fatalf("counts %q", s)
	}
	if s := text(t, ctx, `#checkpoint-summary`); !strings.Contains(s, "Duration") || strings.Contains(s, "no data") {
		t.Fatalf("summary %q", s)
	}
	shots.take("checkpoints")

	// One checkpoint: per-subtask figures; back returns to the list.
	href := get(t, ctx, "first completed checkpoint", chromedp.Evaluate[string](
		`document.querySelector('#checkpoint-history tr[data-checkpoint] .s-COMPLETED').closest('tr').querySelector('a').getAttribute('href')`))
	follow(t, ctx, `#checkpoint-history a[href="`+href+`"]`)
	run(t, ctx, "open one checkpoint", chromedp.WaitVisible(css(`#subtask-stats`)))
	waitFor(t, 10*time.Second, "a row per subtask", func() bool { return count(t, ctx, `#subtask-stats tbody tr`) == tasks })
	if s := text(t, ctx, `#subtask-summary`); !strings.Contains(s, "Sync snapshot") || !strings.Contains(s, "Alignment") {
		t.Fatalf("subtask summary %q", s)
	}
	shots.take("checkpoint")
	run(t, ctx, "back", chromedp.NavigateBack(), chromedp.WaitVisible(css(`#checkpoint-history`)))
	loc := get(t, ctx, "location", chromedp.Location())
	if !strings.HasSuffix(loc, "#/jobs/"+id+"/checkpoints") {
		t.Fatalf("back went to %s", loc)
	}

	// Kafka: lag per source partition.
	follow(t, ctx, `nav.tabs a[href="#/jobs/`+id+`/kafka"]`)
	run(t, ctx, "open kafka", chromedp.WaitVisible(css(`table.kafka-lag`)))
	waitFor(t, 15*time.Second, "4 partitions with offsets", func() bool {
		return count(t, ctx, `table.kafka-lag tbody tr[data-partition]`) == 4 && strings.Contains(text(t, ctx, `#kafka-cards`), "checkpoint")
	})
	shots.take("kafka")

	// Keyboard: focus a tab link and press Enter.
	run(t, ctx, "keyboard to restarts", chromedp.Focus(css(`nav.tabs a[href="#/jobs/`+id+`/restarts"]`)),
		chromedp.KeyEvent("\r"), chromedp.WaitVisible(css(`#restarts`)))
	loc = get(t, ctx, "location", chromedp.Location())
	if !strings.HasSuffix(loc, "/restarts") {
		t.Fatalf("Enter on the tab went to %s", loc)
	}
	if s := text(t, ctx, `#restarts`); !strings.Contains(s, "has not failed") {
		t.Fatalf("restarts before any failure: %q", s)
	}

	// Lose a worker that runs a subtask: the restart appears with every
	// step of its timeline.
	victim := ""
	for _, v := range j.Vertices {
		for _, s := range v.Subtasks {
			if s.Worker != "" {
				victim = s.Worker
			}
		}
	}
	n, err := strconv.Atoi(strings.TrimPrefix(victim, "w"))
	if err != nil {
		t.Fatalf("worker id %q", victim)
	}
	c.KillWorker(n - 1)
	waitFor(t, 45*time.Second, "the restart with its whole timeline", func() bool {
		return count(t, ctx, `#restarts section.restart`) == 1 && count(t, ctx, `#restarts .step.done`) == 5
	})
	if s := text(t, ctx, `#restarts`); !strings.Contains(s, victim) || !strings.Contains(s, "recovered in") || !strings.Contains(s, "checkpoint") {
		t.Fatalf("restart text %q", s)
	}
	shots.take("restarts")

	// The overview now shows two workers and the job's attempt 2.
	follow(t, ctx, `.crumbs a[href="#/"]`)
	run(t, ctx, "overview again", chromedp.WaitVisible(css(`#workers`)))
	waitFor(t, 10*time.Second, "2 workers", func() bool { return count(t, ctx, `#workers tbody tr[data-worker]`) == 2 })
	shots.take("overview-after-restart")

	// An unknown job is a clear message, not a blank page.
	run(t, ctx, "unknown job", chromedp.Navigate(base+"/#/jobs/0badc0de"))
	waitFor(t, 10*time.Second, "the not-found page", func() bool {
		s := text(t, ctx, `main`)
		return strings.Contains(s, "Not found") && strings.Contains(s, "0badc0de")
	})
	var rs *api.Restarts
	rs, err = c.Client().Restarts(context.Background(), id)
	if err != nil || len(rs.Restarts) != 1 {
		t.Fatalf("%+v %v", rs, err)
	}

	// Each worker's memory is on the overview.
	run(t, ctx, "overview for memory", chromedp.Navigate(base+"/#/"), chromedp.WaitVisible(css(`#workers tbody tr[data-worker]`)))
	waitFor(t, 10*time.Second, "worker memory", func() bool {
		return strings.Contains(text(t, ctx, `#workers tbody tr[data-worker] td.mem`), "MiB")
	})

	// The broker goes away: the job is still RUNNING, and its page says
	// which sources and sinks cannot reach it, since when and why.
	stop()
	wg.Wait()
	c.Broker().Close()
	run(t, ctx, "the job with its broker down", chromedp.Navigate(base+"/#/jobs/"+id), chromedp.WaitVisible(css(`#subtasks`)))
	waitFor(t, 45*time.Second, "the unreachable broker on the job page", func() bool {
		return strings.Contains(text(t, ctx, `#job-warnings`), "cannot reach kafka "+c.KafkaAddr()) &&
			strings.Contains(text(t, ctx, `#subtasks`), "unreachable since")
	})
	if s := text(t, ctx, `h1`); !strings.Contains(s, "RUNNING") {
		t.Fatalf("job header %q: want the job still RUNNING", s)
	}
	shots.take("job-broker-down")
}
