package worker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/dataflow"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// The worker classifies a failure by the sentinels its error wraps, with
// unrecoverable first: a restart cannot cure it whatever else it wraps.
func TestFailureKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want controlpb.FailureKind
	}{
		{errors.New("boom"), controlpb.FailureKind_FAILURE_KIND_OTHER},
		{fmt.Errorf("input edge 0: %w", dataflow.ErrChannelBroken), controlpb.FailureKind_FAILURE_KIND_CHANNEL_BROKEN},
		{fmt.Errorf("sink: %w", dataflow.ErrUnrecoverable), controlpb.FailureKind_FAILURE_KIND_UNRECOVERABLE},
		{fmt.Errorf("restore n0: %w: %w", checkpoint.ErrCorrupt, checkpoint.ErrNotFound), controlpb.FailureKind_FAILURE_KIND_CORRUPT_STATE},
		{fmt.Errorf("%w after %w", dataflow.ErrUnrecoverable, dataflow.ErrChannelBroken), controlpb.FailureKind_FAILURE_KIND_UNRECOVERABLE},
		// Text alone is not a kind.
		{errors.New(dataflow.ErrUnrecoverable.Error()), controlpb.FailureKind_FAILURE_KIND_OTHER},
	} {
		if got := failureKind(tc.err); got != tc.want {
			t.Errorf("failureKind(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
