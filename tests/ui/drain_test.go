package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weir-stream/weir/internal/cluster"
)

// TestWebUIDrainingWorker: the overview shows a draining worker's state
// and, when its job has no room on other workers, why it waits.
func TestWebUIDrainingWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and Chromium")
	}
	ctx := browser(t)
	c := cluster.New(t, cluster.Config{Workers: 1, Slots: 2})
	id := c.Submit(t, `name: held
parallelism: 2
checkpoint: {interval: 1s}
pipeline:
  - name: gen
    source: {datagen: {profile: sequence, rate: 100}}
  - name: out
    sink: {discard: {}}
`)
	c.WaitState(t, id, "RUNNING", 30*time.Second)
	if _, err := c.Client().DrainWorker(context.Background(), "w1"); err != nil {
		t.Fatal(err)
	}
	base := "http://" + c.Coordinator().HTTPAddr()
	run(t, ctx, "open the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css(`#workers tbody tr[data-worker="w1"]`)))
	row := `#workers tbody tr[data-worker="w1"]`
	waitFor(t, 10*time.Second, "the worker DRAINING, waiting for room", func() bool {
		s := text(t, ctx, row+` .badge`) + " " + text(t, ctx, row+` .drain-waiting`)
		return strings.Contains(s, "DRAINING") && strings.Contains(s, "job "+id+" keeps running here: it needs 2 slots on other workers, 0 free")
	})
}
