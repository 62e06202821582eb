package devbroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/weir-stream/weir/internal/tlsconf"
)

// TestSecureBroker: with TLS, a client CA and a SASL user, the broker takes
// a client that brings all three (by SCRAM-SHA-512, SCRAM-SHA-256 or
// PLAIN) and refuses a plaintext one, one without a client certificate,
// one without SASL and one with a wrong password.
func TestSecureBroker(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsconf.NewCA("dev-kafka-ca")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.WriteFiles(dir, "broker", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.WriteFiles(dir, "client", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Topics: []string{"events"},
		TLSCert: srv.Cert, TLSKey: srv.Key, TLSClientCA: srv.CA, SASLUser: "weir", SASLPassword: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	pem, err := os.ReadFile(srv.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	pair, err := tls.LoadX509KeyPair(cli.Cert, cli.Key)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	noCert := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	scram512 := scram.Auth{User: "weir", Pass: "s3cret"}.AsSha512Mechanism()

	ping := func(tc *tls.Config, m sasl.Mechanism) error {
		opts := []kgo.Opt{kgo.SeedBrokers(b.Addr()), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second)}
		if tc != nil {
			opts = append(opts, kgo.DialTLSConfig(tc))
		}
		if m != nil {
			opts = append(opts, kgo.SASL(m))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	for _, m := range []sasl.Mechanism{
		scram512, scram.Auth{User: "weir", Pass: "s3cret"}.AsSha256Mechanism(), plain.Auth{User: "weir", Pass: "s3cret"}.AsMechanism(),
	} {
		if err := ping(withCert, m); err != nil {
			t.Errorf("TLS with a client certificate and SASL %s: %v", m.Name(), err)
		}
	}
	for name, err := range map[string]error{
		"plaintext":           ping(nil, scram512),
		"no client cert":      ping(noCert, scram512),
		"no SASL":             ping(withCert, nil),
		"wrong password":      ping(withCert, scram.Auth{User: "weir", Pass: "nope"}.AsSha512Mechanism()),
		"unknown user, PLAIN": ping(withCert, plain.Auth{User: "eve", Pass: "s3cret"}.AsMechanism()),
	} {
		if err == nil {
			t.Errorf("%s: the broker took the client", name)
		}
	}

	// A client with everything writes and reads back.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DialTLSConfig(withCert), kgo.SASL(scram512),
		kgo.DefaultProduceTopic("events"), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil || fs.NumRecords() != 1 {
		t.Fatalf("read back %d records: %v", fs.NumRecords(), err)
	}
}

func TestSecurityConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{TLSCert: "c.pem"}, "a TLS certificate and its key go together"},
		{Config{TLSClientCA: "ca.pem"}, "a client CA needs TLS"},
		{Config{SASLUser: "u"}, "a SASL user and its password go together"},
		{Config{TLSCert: "/nonexistent/c.pem", TLSKey: "/nonexistent/k.pem"}, "TLS certificate /nonexistent/c.pem"},
	} {
		tc.cfg.Addr = "127.0.0.1:0"
		b, err := Start(tc.cfg)
		if err == nil {
			b.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
