package coordinator

import (
	"net/http"

	"github.com/weir-stream/weir/coordinator/api"
)

// handleWorkers serves GET /api/v1/workers.
func (c *Coordinator) handleWorkers(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	ws := c.workersLocked()
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, api.WorkerList{Workers: ws})
}
