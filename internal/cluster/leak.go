package cluster

import (
	"testing"

	"github.com/weir-stream/weir/internal/leakcheck"
)

// Main runs the tests and then fails the run when a goroutine started by
// weir, the dev broker or a Kafka client outlives them: every Stop, Close
// and Terminate must wait for what it started. Use it as
//
//	func TestMain(m *testing.M) { cluster.Main(m) }
func Main(m *testing.M) { leakcheck.Main(m, leakMarkers...) }

// leakMarkers are stack substrings of goroutines that must not outlive a
// test.
var leakMarkers = []string{
	"github.com/weir-stream/weir/",
	"github.com/twmb/franz-go/pkg/kfake",
	"github.com/IBM/sarama",
	"google.golang.org/grpc",
}
