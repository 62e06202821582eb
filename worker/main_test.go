package worker_test

import (
	"testing"

	"github.com/weir-stream/weir/internal/leakcheck"
)

// TestMain fails the run when a goroutine started by the coordinator or the
// worker outlives the tests (every one must exit on Stop).
func TestMain(m *testing.M) { leakcheck.Main(m, "weir/coordinator.", "weir/worker.") }
