package ha_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/ha"
	"github.com/weir-stream/weir/coordinator/ha/devetcd"
	"github.com/weir-stream/weir/internal/tlsconf"
	"github.com/weir-stream/weir/internal/tlsconf/tlstest"
)

// The coordinators reach an etcd that requires TLS with client
// certificates and a user: with the cluster's certificate and the right
// password they elect a leader; without a certificate, with another CA's,
// or with a wrong password they do not get in.
func TestEtcdWithTLSAndAuthentication(t *testing.T) {
	pki := tlstest.New(t)
	e, err := devetcd.Start(devetcd.Config{TLS: pki.Cluster, User: "weir", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	try := func(tlsFiles *tlsconf.Files, user, password string) (*ha.Client, error) {
		cfg := ha.Config{Endpoints: []string{e.Endpoint()}, TTL: 2 * time.Second, DialTimeout: 3 * time.Second,
			OpTimeout: 2 * time.Second, Username: user, Password: password}
		if tlsFiles != nil {
			cfg.TLS = tlstest.Source(t, *tlsFiles).ClientConfig("")
		}
		return ha.Connect(context.Background(), cfg)
	}

	c, err := try(&pki.Cluster, "weir", "s3cret")
	if err != nil {
		t.Fatalf("the cluster's certificate and the right password: %v", err)
	}
	defer c.Close()
	l, err := c.Campaign(context.Background(), ha.Info{ID: "a", HTTPAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Guard(context.Background()); err != nil {
		t.Fatalf("a fenced step over TLS with a user: %v", err)
	}
	if err := l.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}

	for name, tc := range map[string]struct {
		files          *tlsconf.Files
		user, password string
		want           string
	}{
		"plaintext":      {nil, "weir", "s3cret", "do its TLS and the coordinator's --etcd-cert"},
		"another CA":     {&pki.Stranger, "weir", "s3cret", "do its TLS and the coordinator's --etcd-cert"},
		"wrong password": {&pki.Cluster, "weir", "guess", "authentication failed"},
		"no user":        {&pki.Cluster, "", "", "etcd has authentication on"},
	} {
		c, err := try(tc.files, tc.user, tc.password)
		if err == nil {
			c.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
