package coordinator_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/weir-stream/weir/coordinator/clock"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

func TestSessionRefusesBadOpenings(t *testing.T) {
	c := startCoordinator(t, clock.NewManual(t0))
	conn, err := grpc.NewClient(c.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tests := []struct {
		name  string
		first *controlpb.WorkerMessage
		code  codes.Code
	}{
		{"heartbeat first", &controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Heartbeat{Heartbeat: &controlpb.Heartbeat{}}}, codes.FailedPrecondition},
		{"no slots", &controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: &controlpb.Register{WorkerId: "x", DataAddr: "h:1"}}}, codes.InvalidArgument},
		{"no id", &controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: &controlpb.Register{DataAddr: "h:1", Slots: 1}}}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := controlpb.NewCoordinatorClient(conn).Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(tt.first); err != nil {
				t.Fatal(err)
			}
			_, err = s.Recv()
			if status.Code(err) != tt.code {
				t.Fatalf("err %v, want %s", err, tt.code)
			}
		})
	}
	t.Run("register twice", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := controlpb.NewCoordinatorClient(conn).Session(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reg := &controlpb.WorkerMessage{Msg: &controlpb.WorkerMessage_Register{Register: &controlpb.Register{WorkerId: "twice", DataAddr: "h:1", Slots: 1}}}
		if err := s.Send(reg); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(reg); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("err %v", err)
		}
	})
}
