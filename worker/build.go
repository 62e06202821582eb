package worker

import (
	"github.com/weir-stream/weir/internal/buildinfo"
	"github.com/weir-stream/weir/internal/registry"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// registeredOperators are the user operators compiled into this binary,
// which a worker reports when it registers so that the coordinator places
// jobs only where their operators are.
func registeredOperators() []*controlpb.Operator {
	out := []*controlpb.Operator{}
	for _, e := range registry.All() {
		out = append(out, &controlpb.Operator{Id: e.ID, Kind: string(e.Kind), Module: e.Module, Version: e.Version})
	}
	return out
}

func defaultVersion() string { return buildinfo.Version() }
