package command

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weir-stream/weir/worker"
)

// errDrainCutShort: the worker exited with subtasks left; their jobs
// restart as after a failure.
type errDrainCutShort struct{ why string }

func (e errDrainCutShort) Error() string {
	return "drain cut short (" + e.why + "): the jobs still running here restart elsewhere as after a failure"
}

// runUntilDrained runs a started worker until it should stop
// (docs/failover.md, "Draining a worker"):
//
//   - SIGTERM, or a drain an operator started (POST
//     /api/v1/workers/{id}/drain): the worker drains and returns nil once
//     it holds no subtask;
//   - a second SIGTERM, or drainTimeout into the drain: it returns
//     errDrainCutShort at once;
//   - SIGINT, or ctx ending: it returns nil at once, as before drains
//     existed (a developer's Ctrl-C).
func runUntilDrained(ctx context.Context, g *globals, w *worker.Worker, drainTimeout time.Duration, log *slog.Logger) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// From here on the signals come to sigs only; registering first loses
	// none in between.
	if g.releaseSignals != nil {
		g.releaseSignals()
	}
	var deadline <-chan time.Time
	startDeadline := func() {
		if deadline == nil && drainTimeout > 0 {
			deadline = time.After(drainTimeout)
		}
	}
	// A drain an operator starts over the REST API reaches the worker on
	// its session; the deadline starts when it is noticed here.
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	sigterm := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Drained():
			lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			w.Leave(lctx)
			cancel()
			fmt.Fprintf(g.stdout, "worker %s drained: no subtask left\n", w.ID())
			return nil
		case <-deadline:
			return errDrainCutShort{fmt.Sprintf("--drain-timeout %s passed", drainTimeout)}
		case s := <-sigs:
			if s == os.Interrupt {
				return nil
			}
			if sigterm {
				return errDrainCutShort{"a second SIGTERM"}
			}
			sigterm = true
			log.Info("SIGTERM: draining; a second SIGTERM exits at once", "drain_timeout", drainTimeout)
			w.Drain("SIGTERM")
			startDeadline()
		case <-poll.C:
			if w.Draining() {
				startDeadline()
			}
		}
	}
}
