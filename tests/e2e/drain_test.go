package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// TestDrainWithoutRoomWaits: a worker that gets SIGTERM while no other
// worker has room for its job keeps running it and says why (weir workers,
// REST); a second SIGTERM makes it exit at once with status 1, and the job
// restarts as after a failure. A worker with --drain-timeout that an
// operator drains (weir workers drain) exits with status 1 when the
// timeout passes.
func TestDrainWithoutRoomWaits(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t, 1, 2)
	id := c.Submit(c.ipVisitsSpec("checkpoint: {interval: 1s}\n"), "-p", "2")
	c.WaitRunning(id, 1, 60*time.Second)

	w := c.Workers["worker-1"]
	if err := w.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		out, code := c.Weir("workers")
		return code == 0 && strings.Contains(out, "DRAINING") &&
			strings.Contains(out, "worker-1 drains, waiting: job "+id+" keeps running here: it needs 2 slots on other workers, 0 free"), out
	})
	if w.Exited() {
		t.Fatal("the worker exited although its job could not move")
	}
	if j := c.Job(id); j.State != "RUNNING" || j.Attempt != 1 {
		t.Fatalf("job while its worker waits to drain: %s attempt %d", j.State, j.Attempt)
	}
	// A second SIGTERM: out at once.
	if err := w.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := w.Wait(30 * time.Second); err != nil || code != 1 {
		t.Fatalf("worker after a second SIGTERM: exit %d, %v (log %s)", code, err, w.LogPath)
	}
	if log := readFile(w.LogPath); !strings.Contains(log, "drain cut short (a second SIGTERM)") {
		t.Fatalf("the worker does not say why it exited:\n%s", log)
	}

	// A replacement with a drain timeout: the job moves to it after the
	// failure above; then it cannot drain either, and its timeout ends it.
	p := proc.Start(t, c.Dir, c.Bin, "worker-2", nil, append([]string{"worker", "--coordinator", c.GRPCAddr, "--slots", "2",
		"--id", "worker-2", "--allowed-paths", c.Allowed, "--drain-timeout", "1s"}, c.TLSArgs()...)...)
	c.WaitRunning(id, 2, 90*time.Second)
	rs := c.restarts(id)
	if len(rs.Restarts) == 0 || rs.Restarts[0].Reason != "failure" {
		t.Fatalf("restart after the cut-short drain: %+v, want reason failure", rs.Restarts)
	}
	// This time an operator drains it: weir workers drain.
	out, code := c.Weir("workers", "drain", "worker-2")
	if code != 0 || !strings.Contains(out, "draining worker-2 (2/2 slots used)") ||
		!strings.Contains(out, "waiting: job "+id+" keeps running here: it needs 2 slots on other workers, 0 free") {
		t.Fatalf("weir workers drain: exit %d\n%s", code, out)
	}
	if out, code := c.Weir("workers", "drain", "nope"); code != 1 || !strings.Contains(out, `worker "nope" not found`) {
		t.Fatalf("weir workers drain nope: exit %d\n%s", code, out)
	}
	code, err := p.Wait(30 * time.Second)
	if err != nil || code != 1 {
		t.Fatalf("worker with --drain-timeout 1s: exit %d, %v (log %s)", code, err, p.LogPath)
	}
	if log := readFile(p.LogPath); !strings.Contains(log, fmt.Sprintf("drain cut short (--drain-timeout %s passed)", time.Second)) {
		t.Fatalf("the worker does not say why it exited:\n%s", log)
	}
}
