package kafka

import (
	"testing"

	"github.com/weir-stream/weir/internal/leakcheck"
)

// TestMain fails the run when goroutines of sarama or this package outlive
// the tests: Run, Close and the dead-letter Closer must release everything.
func TestMain(m *testing.M) { leakcheck.Main(m, "IBM/sarama", "weir/connectors/kafka.") }
