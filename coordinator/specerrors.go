package coordinator

import (
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/dataflow/spec"
)

// specErrorDetails turns a spec error (spec.Errors anywhere in the chain)
// into one detail per field error, so a user can fix everything in one go.
func specErrorDetails(err error) []api.ErrorDetail {
	es, ok := spec.AsErrors(err)
	if !ok {
		return nil
	}
	out := make([]api.ErrorDetail, 0, len(es))
	for _, e := range es {
		if e != nil {
			out = append(out, api.ErrorDetail{Path: e.Path, Message: e.Msg})
		}
	}
	return out
}
