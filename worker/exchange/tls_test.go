package exchange

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/weir-stream/weir/internal/tlsconf"
	"github.com/weir-stream/weir/internal/tlsconf/tlstest"
)

// serveTLS is serve with the data plane's mutual TLS.
func serveTLS(t testing.TB, x *Exchange, s *tlsconf.Source) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(s.ServerOptions()...)
	x.Register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		x.Close()
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// Only a worker with a certificate from the cluster's CA can open a
// channel to a worker serving the data plane with TLS: another CA's
// certificate, or plaintext, never gets a frame to the input gate.
func TestChannelsNeedTheClustersCertificate(t *testing.T) {
	pki := tlstest.New(t)
	recv := newExchange(t)
	addr := serveTLS(t, recv, tlstest.Source(t, pki.Cluster))
	g, err := recv.OpenInputGate("job", 1, []EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	var plain *tlsconf.Source
	for name, creds := range map[string]*tlsconf.Source{"another CA": tlstest.Source(t, pki.Stranger), "plaintext": plain} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		x := newExchange(t, WithTLS(creds), WithRegistrationTimeout(time.Second))
		s, err := x.Dial(ctx, addr, chanID("job", 1, 0, 0, 0))
		cancel()
		if err == nil {
			_ = s.Close(context.Background())
			t.Fatalf("%s: a channel was opened", name)
		}
		t.Logf("%s: %v", name, err)
		if !strings.Contains(err.Error(), "open job job attempt 1") {
			t.Errorf("%s: %v, want the channel named", name, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	x := newExchange(t, WithTLS(tlstest.Source(t, pki.Cluster)))
	s, err := x.Dial(ctx, addr, chanID("job", 1, 0, 0, 0))
	if err != nil {
		t.Fatalf("a worker of the cluster: %v", err)
	}
	errs := make(chan error, 1)
	go func() { errs <- send(ctx, s, 0, 100) }()
	got := drain(t, ctx, g)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	checkStream(t, 0, got[0], 0, 100)
}
