package coordinator

import (
	"net"
	"testing"

	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// FuzzValidateRegister: a registration from anyone who reaches the gRPC
// port never panics the check, and one it accepts has what the registry
// and the placements rely on.
func FuzzValidateRegister(f *testing.F) {
	f.Add("w1", "127.0.0.1:7000", "127.0.0.1:8000", int32(4), "v1")
	f.Add("", "", "", int32(0), "")
	f.Add("a b", "h", "nonsense", int32(2147483647), "\xff")
	f.Add("w", "[::1]:1", "", int32(1024), "")
	f.Add("w", "h:65536", ":80", int32(-1), "")
	f.Fuzz(func(t *testing.T, id, data, http string, slots int32, version string) {
		err := validateRegister(&controlpb.Register{WorkerId: id, DataAddr: data, HttpAddr: http, Slots: slots, Version: version})
		if err != nil {
			return
		}
		if id == "" || len(id) > maxWorkerField || slots < 1 || slots > MaxWorkerSlots {
			t.Fatalf("accepted id %q slots %d", id, slots)
		}
		if host, _, e := net.SplitHostPort(data); e != nil || host == "" {
			t.Fatalf("accepted data address %q", data)
		}
	})
}
