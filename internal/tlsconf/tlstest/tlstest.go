// Package tlstest makes the certificates of a test: a cluster's CA and a
// certificate from it, and a stranger's certificate from another CA (that
// trusts the cluster's CA, so only the cluster's check of it can stop it).
package tlstest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/tlsconf"
)

// PKI is the certificates of one test, as files under Dir.
type PKI struct {
	Dir string
	CA  *tlsconf.CA
	// Cluster: a certificate of CA for the local host names.
	Cluster tlsconf.Files
	// Stranger: a certificate of another CA, with the same names, trusting
	// CA.
	Stranger tlsconf.Files
}

// New makes a PKI in a temporary directory.
func New(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	ca, err := tlsconf.NewCA("test cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := ca.WriteFiles(dir, "node", tlsconf.LocalHosts(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsconf.NewCA("test cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	sdir := filepath.Join(dir, "stranger")
	if err := os.Mkdir(sdir, 0o700); err != nil {
		t.Fatal(err)
	}
	stranger, err := other.WriteFiles(sdir, "node", tlsconf.LocalHosts(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stranger.CA = cluster.CA
	return &PKI{Dir: dir, CA: ca, Cluster: cluster, Stranger: stranger}
}

// Source loads f.
func Source(t testing.TB, f tlsconf.Files) *tlsconf.Source {
	t.Helper()
	s, err := tlsconf.Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
