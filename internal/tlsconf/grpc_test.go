package tlsconf

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// serveGRPC serves the health service with the Source's server options.
func serveGRPC(t *testing.T, s *Source) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(s.ServerOptions()...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

func check(t *testing.T, addr string, s *Source) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, s.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestGRPCOverMutualTLS(t *testing.T) {
	p := newPKI(t)
	addr := serveGRPC(t, load(t, p.node))
	if err := check(t, addr, load(t, p.node)); err != nil {
		t.Fatalf("a client of the cluster: %v", err)
	}
	f := p.strange
	f.CA = p.node.CA
	if err := check(t, addr, load(t, f)); status.Code(err) != codes.Unavailable {
		t.Fatalf("a client of another CA: %v, want Unavailable", err)
	}
	var plain *Source // nil: plaintext
	if err := check(t, addr, plain); status.Code(err) != codes.Unavailable {
		t.Fatalf("a plaintext client: %v, want Unavailable", err)
	}
}

// A plaintext server is refused by a TLS client too: a worker configured
// for TLS never sends its registration in the clear.
func TestTLSClientRefusesPlaintextServer(t *testing.T) {
	p := newPKI(t)
	var plain *Source
	addr := serveGRPC(t, plain)
	if err := check(t, addr, load(t, p.node)); status.Code(err) != codes.Unavailable {
		t.Fatalf("a TLS client against a plaintext server: %v, want Unavailable", err)
	}
}
