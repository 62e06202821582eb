package ui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/auth"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/buildinfo"
	"github.com/weir-stream/weir/internal/cluster"
	"github.com/weir-stream/weir/internal/registry"
	"github.com/weir-stream/weir/internal/tlsconf/tlstest"
)

// slowOp takes a millisecond per record: the job's bottleneck.
type slowOp struct{}

func (slowOp) Open(*dataflow.Context) error { return nil }
func (slowOp) Process(r *dataflow.Record, out dataflow.Output) error {
	time.Sleep(time.Millisecond) // the work a real operator would do, not synchronisation
	return out.Emit(r)
}
func (slowOp) Close(dataflow.Output) error { return nil }

// failOp fails on its first record, so its job restarts again and again.
type failOp struct{}

func (failOp) Open(*dataflow.Context) error { return nil }
func (failOp) Process(*dataflow.Record, dataflow.Output) error {
	return errors.New("uitest.fail: this record cannot be processed")
}
func (failOp) Close(dataflow.Output) error { return nil }

func register(t *testing.T, id string, op func() dataflow.Operator) {
	t.Helper()
	if err := registry.Register(registry.Entry{
		ID: id, Kind: registry.KindProcess, Module: "example.com/uiops", Version: "v1.0.0",
		Check: func(spec.Config) error { return nil },
		New:   func(spec.Config, *dataflow.Context) (dataflow.Operator, error) { return op(), nil },
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Unregister(id) })
}

// TestWebUIBottleneckAndLastFailure: the job graph marks the busiest
// vertex the bottleneck and tints it by its busy share, while the source
// upstream of it is backpressured and not marked; a job that fails again
// and again shows its last failure while it restarts.
func TestWebUIBottleneckAndLastFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and Chromium")
	}
	register(t, "uitest.slow", func() dataflow.Operator { return slowOp{} })
	register(t, "uitest.fail", func() dataflow.Operator { return failOp{} })
	ctx := browser(t)
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 4, HeartbeatInterval: 200 * time.Millisecond,
		TLS: tlstest.Source(t, tlstest.New(t).Cluster)})
	slow := c.Submit(t, `name: slow
parallelism: 1
pipeline:
  - name: gen
    source: {datagen: {profile: sequence}}
  - name: by-id
    key_by: id
  - name: work
    process: {operator: uitest.slow}
  - name: out
    sink: {discard: {}}
`)
	c.WaitState(t, slow, "RUNNING", 30*time.Second)
	base := "http://" + c.Coordinator().HTTPAddr()
	shots := &shooter{t: t, ctx: ctx, dir: artifactDir(t)}

	run(t, ctx, "open the slow job", chromedp.Navigate(base+"/#/jobs/"+slow), chromedp.WaitVisible(css(`#job-graph`)))
	busy := func(v string) int {
		s := get(t, ctx, "busy of "+v, chromedp.Evaluate[string](
			`(document.querySelector('#job-graph g.vertex[data-vertex="`+v+`"]') || {getAttribute: () => ''}).getAttribute('data-busy') || ''`))
		n, err := strconv.Atoi(s)
		if err != nil {
			return -1
		}
		return n
	}
	waitFor(t, 30*time.Second, "the work vertex marked the bottleneck", func() bool {
		return count(t, ctx, `#job-graph g.vertex.bottleneck[data-vertex="work"]`) == 1 && busy("work") >= 50
	})
	if n := count(t, ctx, `#job-graph g.vertex.bottleneck`); n != 1 {
		t.Fatalf("%d vertices marked the bottleneck, want only work", n)
	}
	if b := busy("gen"); b < 0 || b >= busy("work") {
		t.Fatalf("source busy %d%%, want known and below the bottleneck's %d%%", b, busy("work"))
	}
	if s := text(t, ctx, `#job-graph g.vertex[data-vertex="work"]`); !strings.Contains(s, "bottleneck") || !strings.Contains(s, "busy ") {
		t.Fatalf("bottleneck box %q", s)
	}
	// The tint: the busy box is not white, the source's is lighter.
	fill := func(v string) string {
		return get(t, ctx, "fill of "+v, chromedp.Evaluate[string](
			`getComputedStyle(document.querySelector('#job-graph g.vertex[data-vertex="`+v+`"] rect.vbox')).fill`))
	}
	if f := fill("work"); f == "rgb(255, 255, 255)" || f == fill("gen") {
		t.Fatalf("work box fill %q, source %q: want the bottleneck tinted apart", f, fill("gen"))
	}
	// The upstream vertex is the backpressured one (orange outline).
	waitFor(t, 20*time.Second, "the source backpressured", func() bool {
		return count(t, ctx, `#job-graph g.vertex[data-vertex="gen"] rect.vbox.bp`) == 1
	})
	if s := text(t, ctx, `#vertices tr[data-vertex="work"] td.busy`); !strings.Contains(s, "%") {
		t.Fatalf("vertices table busy cell %q", s)
	}
	shots.take("job-bottleneck")
	// The slow job holds the worker's exchange full; the next job has it
	// to itself.
	if err := c.Client().Cancel(context.Background(), slow); err != nil {
		t.Fatal(err)
	}
	c.WaitState(t, slow, "CANCELLED", 30*time.Second)

	flaky := c.Submit(t, `name: flaky
parallelism: 1
restart: {strategy: fixed, attempts: 1000, delay: 500ms}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 10}}
  - name: by-id
    key_by: id
  - name: boom
    process: {operator: uitest.fail}
  - name: out
    sink: {discard: {}}
`)
	run(t, ctx, "open the flaky job", chromedp.Navigate(base+"/#/jobs/"+flaky), chromedp.WaitVisible(css(`h1`)))
	waitFor(t, 30*time.Second, "the last failure on a job that restarts", func() bool {
		return count(t, ctx, `#last-failure`) == 1
	})
	s := text(t, ctx, `#last-failure`)
	if !strings.Contains(s, "Last failure (attempt ") || !strings.Contains(s, "uitest.fail: this record cannot be processed") {
		t.Fatalf("last failure line %q", s)
	}
	if h := text(t, ctx, `h1`); strings.Contains(h, "FAILED") {
		t.Fatalf("job header %q: the job should still be restarting", h)
	}
	// It follows the restarts: a later attempt's failure replaces it.
	first, now := s, s
	waitFor(t, 30*time.Second, "a later failure", func() bool {
		if count(t, ctx, `#last-failure`) != 1 {
			return false
		}
		now = text(t, ctx, `#last-failure`)
		return now != first
	})
	shots.take("job-last-failure")
}

// TestWebUIInsecureReasons: each of overview's insecure_reasons shows
// where it belongs and only then: a cluster without mutual TLS gets the
// banner on the overview, a REST API without tokens the header's notice.
// The overview also shows the coordinator's version.
func TestWebUIInsecureReasons(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	ctx := browser(t)
	tlsOnly := startCoordinatorWith(t, coordinator.Config{TLS: tlstest.Source(t, tlstest.New(t).Cluster)})
	run(t, ctx, "open a coordinator with mutual TLS and no tokens", chromedp.Navigate(tlsOnly+"/"), chromedp.WaitVisible(css(`#overview-cards`)))
	if n := count(t, ctx, `#insecure-banner`); n != 0 {
		t.Fatal("the insecure-cluster banner shows on a coordinator with mutual TLS")
	}
	if get(t, ctx, "header notice", chromedp.Evaluate[bool](`document.getElementById('insecure').hidden`)) {
		t.Fatal("no header notice on a coordinator without tokens")
	}
	if s := text(t, ctx, `#coordinator-version`); !strings.Contains(s, "weir "+buildinfo.Version()) || !strings.Contains(s, "go1.") {
		t.Fatalf("coordinator version %q, want weir %s and its Go release", s, buildinfo.Version())
	}

	tokens, tok := viewerTokens(t)
	plain := startCoordinatorWith(t, coordinator.Config{Tokens: tokens})
	run(t, ctx, "open a coordinator with tokens and no TLS", chromedp.Navigate(plain+"/"), chromedp.WaitVisible(css(`#login #token`)))
	run(t, ctx, "log in", chromedp.SendKeys(css(`#token`), tok), chromedp.Click(css(`#login-submit`)), chromedp.WaitVisible(css(`#overview-cards`)))
	waitFor(t, 10*time.Second, "the insecure-cluster banner", func() bool { return count(t, ctx, `#insecure-banner`) == 1 })
	if s := text(t, ctx, `#insecure-banner`); !strings.Contains(s, "without mutual TLS") || !strings.Contains(s, "--tls-cert") {
		t.Fatalf("banner %q", s)
	}
	if !get(t, ctx, "header notice", chromedp.Evaluate[bool](`document.getElementById('insecure').hidden`)) {
		t.Fatal("the no-authentication notice shows on a coordinator with tokens")
	}
}

// startCoordinatorWith runs a coordinator without workers with cfg's TLS
// and tokens (nil: served like --insecure) and returns its URL.
func startCoordinatorWith(t *testing.T, cfg coordinator.Config) string {
	t.Helper()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.ScheduleTimeout = "127.0.0.1:0", "127.0.0.1:0", -1
	cfg.CheckpointStorage = "file://" + t.TempDir()
	co, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	return "http://" + co.HTTPAddr()
}

// viewerTokens is a tokens file with one viewer token, and the token.
func viewerTokens(t *testing.T) (coordinator.Authenticator, string) {
	t.Helper()
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte(auth.Line("viewer", auth.Viewer, tok)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Open(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tokens, tok
}
