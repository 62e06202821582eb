package hdfstest

import (
	"testing"

	"github.com/weir-stream/weir/internal/leakcheck"
)

// TestMain fails the run when a goroutine of the server or of the client
// library outlives the tests: Close must wait for everything it started.
func TestMain(m *testing.M) { leakcheck.Main(m, "weir/internal/hdfstest.(*Server)", "colinmarc/hdfs") }
