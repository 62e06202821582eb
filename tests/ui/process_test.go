package ui

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/internal/proc"
)

// TestWebUIRealProcesses runs the built binary as separate processes (a
// coordinator and two workers) and watches them in Chromium: a SIGKILLed
// worker shows up as a restart with its whole timeline; then the
// coordinator itself is SIGKILLed and started again on the same storage,
// and the open page, which keeps polling, shows the same checkpoint
// history and restart again, read back from checkpoint storage.
func TestWebUIRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test with Chromium")
	}
	ctx := browser(t)
	bin := proc.Binary(t)
	dir := proc.ArtifactDir(t)
	storageDir := filepath.Join(t.TempDir(), "checkpoints")
	storage := "file://" + storageDir
	grpcAddr, httpAddr := proc.FreeAddr(t), proc.FreeAddr(t)
	startCoordinator := func() *proc.Process {
		return proc.Start(t, dir, bin, "coordinator", nil, "coordinator", "--grpc-addr", grpcAddr, "--http-addr", httpAddr,
			"--checkpoint-storage", storage, "--heartbeat-interval", "200ms", "--heartbeat-timeout", "10s")
	}
	coord := startCoordinator()
	workers := map[string]*proc.Process{}
	for _, id := range []string{"worker-1", "worker-2"} {
		workers[id] = proc.Start(t, dir, bin, id, nil, "worker", "--coordinator", grpcAddr, "--slots", "4", "--id", id, "--allowed-paths", storageDir)
	}
	cl := api.NewClient("http://" + httpAddr)
	bg := context.Background()
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		ws, err := cl.Workers(bg)
		return err == nil && len(ws) == 2, fmt.Sprintf("workers %v %v", ws, err)
	})
	id, err := cl.Submit(bg, []byte(`name: survivor
parallelism: 2
checkpoint: {interval: 300ms}
restart: {strategy: fixed, attempts: 5, delay: 200ms}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 2000}}
  - name: by-id
    key_by: id
  - name: out
    sink: {discard: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	shots := &shooter{t: t, ctx: ctx, dir: artifactDir(t)}
	current = shots
	defer func() { current = nil }()

	base := "http://" + httpAddr
	// Started without --tls-cert: the overview says the cluster is
	// insecure, in a banner and a card.
	run(t, ctx, "open the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css(`#insecure-banner`)))
	if s := text(t, ctx, `#insecure-banner`); !strings.Contains(s, "Insecure cluster") || !strings.Contains(s, "--tls-cert") {
		t.Fatalf("insecure banner %q", s)
	}
	if s := text(t, ctx, `#overview-cards`); !strings.Contains(s, "plaintext") {
		t.Fatalf("overview cards %q, want cluster TLS shown off", s)
	}
	run(t, ctx, "open checkpoints", chromedp.Navigate(base+"/#/jobs/"+id+"/checkpoints"), chromedp.WaitVisible(css(`#checkpoint-history`)))
	waitFor(t, 60*time.Second, "3 completed checkpoints", func() bool {
		return count(t, ctx, `#checkpoint-history .s-COMPLETED`) >= 3
	})

	// SIGKILL a worker that runs a subtask.
	j, err := cl.Job(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	victim := j.Vertices[0].Subtasks[0].Worker
	if workers[victim] == nil {
		t.Fatalf("subtask on unknown worker %q", victim)
	}
	workers[victim].Kill()
	follow(t, ctx, `nav.tabs a[href="#/jobs/`+id+`/restarts"]`)
	run(t, ctx, "open restarts", chromedp.WaitVisible(css(`#restarts`)))
	waitFor(t, 60*time.Second, "the restart with its whole timeline", func() bool {
		return count(t, ctx, `#restarts section.restart`) == 1 && count(t, ctx, `#restarts .step.done`) == 5
	})
	if s := text(t, ctx, `#restarts`); !strings.Contains(s, victim) {
		t.Fatalf("restart does not name %s: %q", victim, s)
	}
	shots.take("process-restarts")

	before, err := cl.Checkpoints(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	var ended []int64
	for _, h := range before.History {
		if h.Status != "IN_PROGRESS" {
			ended = append(ended, h.ID)
		}
	}

	// SIGKILL the coordinator and start it again on the same storage. The
	// page keeps polling and shows the job's past again.
	coord.Kill()
	coord = startCoordinator()
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		_, err := cl.Job(bg, id)
		return err == nil, fmt.Sprintf("the new coordinator does not list the job: %v", err)
	})
	// A fresh load, so everything shown comes from the new coordinator.
	run(t, ctx, "reload restarts", chromedp.Reload(), chromedp.WaitVisible(css(`#restarts`)))
	waitFor(t, 30*time.Second, "the restart shown again by the new coordinator", func() bool {
		return strings.Contains(text(t, ctx, `#restarts`), victim) &&
			count(t, ctx, `#restarts section.restart .step.done[data-step="running"]`) >= 1
	})
	shots.take("process-restarts-after-coordinator-restart")
	follow(t, ctx, `nav.tabs a[href="#/jobs/`+id+`/checkpoints"]`)
	run(t, ctx, "open checkpoints again", chromedp.WaitVisible(css(`#checkpoint-history`)))
	waitFor(t, 30*time.Second, "every checkpoint seen before in the history", func() bool {
		for _, cid := range ended {
			if count(t, ctx, `#checkpoint-history tr[data-checkpoint="`+strconv.FormatInt(cid, 10)+`"]`) != 1 {
				return false
			}
		}
		return true
	})
	shots.take("process-checkpoints-after-coordinator-restart")
	for _, w := range workers {
		w.Kill()
	}
	coord.Kill()
}
