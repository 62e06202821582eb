package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weir-stream/weir/internal/proc"
	"github.com/weir-stream/weir/internal/tlsconf"
	datapb "github.com/weir-stream/weir/proto/data/v1"
)

// TestClusterMutualTLS runs the cluster's mutual TLS across real
// processes: a worker with a certificate from another CA, or none, is
// refused by the coordinator and never registers; neither can open a
// data channel to a worker; and a certificate rotated on disk is served
// by the running coordinator from the next connection on, and a worker
// holding the new one registers.
func TestClusterMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := startCluster(t, 1, 2)

	// A stranger: a certificate of another CA (that trusts the cluster's
	// CA, so only the coordinator's check of it stops it).
	other, err := tlsconf.NewCA("weir test cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.WriteFiles(t.TempDir(), "node", tlsconf.LocalHosts(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stranger.CA = c.TLS.CA
	intruder := c.startWorkerArgs("intruder", "--tls-cert", stranger.Cert, "--tls-key", stranger.Key, "--tls-ca", stranger.CA)
	plain := c.startWorkerArgs("plaintext")
	proc.Eventually(t, 30*time.Second, func() (bool, string) {
		log := readFile(c.Coordinator.LogPath)
		return strings.Contains(log, "certificate signed by unknown authority") &&
				strings.Contains(log, "first record does not look like a TLS handshake"),
			"the coordinator has not logged both refused handshakes:\n" + log
	})
	if ws, err := c.API.Workers(c.Ctx()); err != nil || len(ws) != 1 || ws[0].ID != "worker-1" {
		t.Fatalf("workers %+v (%v), want only worker-1", ws, err)
	}
	if log := readFile(intruder.LogPath); !strings.Contains(log, "cluster mutual TLS") {
		t.Errorf("the intruder did not run with its certificate:\n%s", log)
	}
	if log := readFile(plain.LogPath); !strings.Contains(log, "INSECURE") {
		t.Errorf("a worker without --tls-cert does not say INSECURE:\n%s", log)
	}

	// The data plane: a channel to worker-1 needs the cluster's
	// certificate too.
	ws, err := c.API.Workers(c.Ctx())
	if err != nil {
		t.Fatal(err)
	}
	dataAddr := ws[0].DataAddr
	for name, creds := range map[string]*tlsconf.Source{
		"another CA": source(t, stranger),
		"plaintext":  nil,
	} {
		if err := openChannel(t, dataAddr, creds); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: opening a channel to %s: %v, want Unavailable", name, dataAddr, err)
		}
	}
	// The cluster's certificate gets through the handshake to the
	// exchange itself, which refuses a stream that does not start with
	// Open.
	if err := openChannel(t, dataAddr, source(t, c.TLS)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("the cluster's certificate: opening a channel: %v, want InvalidArgument from the exchange", err)
	}

	// Rotation: a new certificate of the CA written over the files every
	// process reads. The coordinator serves it on the next connection,
	// without a restart.
	old := servedSerial(t, c.GRPCAddr, c.TLS)
	newFiles, err := c.CA.WriteFiles(filepath.Dir(c.TLS.Cert), "node", tlsconf.LocalHosts(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := source(t, newFiles).Leaf().SerialNumber.String()
	if want == old {
		t.Fatal("the rotated certificate has the old serial")
	}
	if got := servedSerial(t, c.GRPCAddr, c.TLS); got != want {
		t.Fatalf("the coordinator serves serial %s after the rotation, want %s (was %s)", got, want, old)
	}
	c.StartWorker("worker-2", 2, nil)
	c.WaitWorkers(2)
	if log := readFile(c.Coordinator.LogPath); !strings.Contains(log, "TLS files reloaded") {
		t.Errorf("the coordinator did not log the reload:\n%s", log)
	}
}

// startWorkerArgs starts a worker with the cluster's usual flags but the
// given TLS flags (none: plaintext).
func (c *cluster) startWorkerArgs(id string, tlsArgs ...string) *proc.Process {
	c.T.Helper()
	args := []string{"worker", "--coordinator", c.GRPCAddr, "--slots", "1", "--id", id, "--allowed-paths", c.Allowed}
	return proc.Start(c.T, c.Dir, c.Bin, id, nil, append(args, tlsArgs...)...)
}

func source(t *testing.T, f tlsconf.Files) *tlsconf.Source {
	t.Helper()
	s, err := tlsconf.Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openChannel opens an Exchange stream at addr with creds (nil:
// plaintext), sends an empty frame where Open belongs, and returns how the
// stream ended: Unavailable when the handshake failed, InvalidArgument
// when it reached the exchange.
func openChannel(t *testing.T, addr string, creds *tlsconf.Source) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, creds.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := datapb.NewExchangeClient(cc).Channel(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&datapb.SenderMessage{Msg: &datapb.SenderMessage_Frame{Frame: &datapb.Frame{}}}); err != nil {
		_, err = st.Recv()
		return err
	}
	_, err = st.Recv()
	return err
}

// servedSerial is the serial of the certificate addr serves to a client
// holding f, over a new connection.
func servedSerial(t *testing.T, addr string, f tlsconf.Files) string {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := source(t, f).ClientConfig(host)
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
