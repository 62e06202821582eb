package coordinator

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/tlsconf"
)

// TestLagEndpointUsesTheSourcesSecurity: the lag endpoint's end offsets
// come from a TLS+SCRAM-only broker with the source's own tls/sasl blocks
// (its password a secret reference), and without them it gets none.
func TestLagEndpointUsesTheSourcesSecurity(t *testing.T) {
	ca, err := tlsconf.NewCA("kafka-ca")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(t.TempDir(), "broker", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "weir", "s3cret"), kfake.SeedTopics(3, "in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Setenv("WEIR_SECRET_KAFKA", "s3cret")
	ref := kafkaSourceRef{node: "src", topic: "in", brokers: c.ListenAddrs(), isolation: "read_committed",
		tls:  &spec.KafkaTLS{CAFile: files.CA},
		sasl: &spec.KafkaSASL{Mechanism: "SCRAM-SHA-256", Username: "weir", Password: "${env:WEIR_SECRET_KAFKA}"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := endOffsets(ctx, ref)
	if err != nil || len(ends) != 3 {
		t.Fatalf("end offsets with the source's security: %v, %v", ends, err)
	}
	ref.tls, ref.sasl = nil, nil
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if ends, err := endOffsets(ctx2, ref); err == nil {
		t.Fatalf("plaintext without a login got end offsets %v", ends)
	}
}
