package coordinator_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/clock"
	"github.com/weir-stream/weir/internal/tlsconf"
	"github.com/weir-stream/weir/internal/tlsconf/tlstest"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// registerWith is register over the given client credentials.
func registerWith(t *testing.T, addr string, creds *tlsconf.Source, id string) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, creds.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(func() { cancel(); conn.Close() })
	s, err := controlpb.NewCoordinatorClient(conn).Session(ctx)
	if err != nil {
		return err
	}
	reg := &controlpb.Register{WorkerId: id, DataAddr: "127.0.0.1:1", Slots: 1}
	if err := s.Send(&controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: reg}}); err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

// Only a worker with a certificate from the cluster's CA can register over
// a control plane served with TLS: one with another CA's certificate, or
// none, or speaking plaintext, never reaches the session handler.
func TestRegistrationNeedsTheClustersCertificate(t *testing.T) {
	pki := tlstest.New(t)
	c := startCoordinator(t, clock.Real{}, func(cfg *coordinator.Config) { cfg.TLS = tlstest.Source(t, pki.Cluster) })
	cl := api.NewClient("http://" + c.HTTPAddr())

	var plain *tlsconf.Source
	for name, creds := range map[string]*tlsconf.Source{
		"another CA": tlstest.Source(t, pki.Stranger),
		"plaintext":  plain,
	} {
		err := registerWith(t, c.GRPCAddr(), creds, "intruder")
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: registration ended with %v, want Unavailable (no handshake)", name, err)
		}
	}
	if ws, err := cl.Workers(context.Background()); err != nil || len(ws) != 0 {
		t.Fatalf("workers after the refused registrations: %v %v", ws, err)
	}
	if err := registerWith(t, c.GRPCAddr(), tlstest.Source(t, pki.Cluster), "w1"); err != nil {
		t.Fatalf("a worker of the cluster: %v", err)
	}
	eventually(t, 10*time.Second, func() bool {
		ws, _ := cl.Workers(context.Background())
		return len(ws) == 1 && ws[0].ID == "w1"
	}, "w1 to be listed")
}

// The overview says whether the control plane runs without mutual TLS
// (the web UI's insecure banner reads it).
func TestOverviewSaysWhetherTheClusterIsInsecure(t *testing.T) {
	plain := startCoordinator(t, clock.Real{})
	secure := startCoordinator(t, clock.Real{}, func(cfg *coordinator.Config) { cfg.TLS = tlstest.Source(t, tlstest.New(t).Cluster) })
	for c, want := range map[*coordinator.Coordinator]bool{plain: true, secure: false} {
		ov, err := api.NewClient("http://" + c.HTTPAddr()).Overview(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ov.Insecure != want {
			t.Errorf("overview insecure %v, want %v", ov.Insecure, want)
		}
	}
}
