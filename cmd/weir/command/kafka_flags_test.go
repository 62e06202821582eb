package command

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-stream/weir/internal/tlsconf"
)

// TestLoadgenOverTLSAndSCRAM: weir loadgen reaches a broker that takes
// only TLS and SCRAM-SHA-512 logins with the --kafka-* flags, the password
// a secret reference; without them, or with a wrong password, it fails.
func TestLoadgenOverTLSAndSCRAM(t *testing.T) {
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
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "weir", "s3cret"), kfake.SeedTopics(2, "in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	broker := c.ListenAddrs()[0]
	t.Setenv("WEIR_SECRET_KAFKA", "s3cret")
	base := []string{"loadgen", "access-log", "--brokers", broker, "--topic", "in", "--events", "200", "--partitions", "2"}
	secure := append(append([]string{}, base...), "--kafka-tls-ca", files.CA,
		"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", "weir", "--kafka-sasl-password", "${env:WEIR_SECRET_KAFKA}")
	mustRun(t, 0, secure...)

	wrong := append(append([]string{}, base...), "--kafka-tls-ca", files.CA,
		"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", "weir", "--kafka-sasl-password", "nope")
	if r := run(t, wrong...); r.code == 0 {
		t.Fatalf("a wrong password was accepted: %s", r)
	}
	if r := run(t, append(append([]string{}, base...), "--kafka-sasl-user", "weir")...); r.code != 2 {
		t.Fatalf("--kafka-sasl-user without a password: want exit 2, got %s", r)
	}
}
