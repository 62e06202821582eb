package coordinator

import (
	"net/http"
	"runtime"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/lifecycle"
)

// handleOverview serves GET /api/v1/overview.
func (c *Coordinator) handleOverview(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	ov := api.Overview{Workers: len(c.workers), Jobs: map[string]int{}, Coordinator: api.CoordinatorInfo{Role: "single"}}
	if c.cfg.Identity != nil {
		ov.Coordinator = *c.cfg.Identity
	}
	ov.Coordinator.Version, ov.Coordinator.GoVersion = c.version, runtime.Version()
	for _, s := range lifecycle.States {
		ov.Jobs[string(s)] = 0
	}
	for _, wk := range c.workersLocked() {
		ov.SlotsTotal += wk.Slots
		ov.SlotsUsed += wk.SlotsUsed
	}
	for _, j := range c.jobs {
		ov.Jobs[string(j.m.State)]++
	}
	c.mu.Unlock()
	ov.SlotsFree = max(ov.SlotsTotal-ov.SlotsUsed, 0)
	if c.cfg.TLS == nil {
		ov.InsecureReasons = append(ov.InsecureReasons, "cluster connections without mutual TLS")
	}
	if c.cfg.Tokens == nil {
		ov.InsecureReasons = append(ov.InsecureReasons, "REST API without tokens")
	}
	ov.Insecure = len(ov.InsecureReasons) > 0
	writeJSON(w, http.StatusOK, ov)
}
