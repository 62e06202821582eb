package command

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator"
	"github.com/weir-stream/weir/coordinator/auth"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(t.TempDir(), name+".pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a leaf certificate for 127.0.0.1 (server and client use)
// and its key into dir, returning their paths.
func (ca *testCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	// Write and rename, as a certificate renewal should.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func startTLSCoordinator(t *testing.T, tc *tls.Config, tokens coordinator.Authenticator) string {
	t.Helper()
	co, err := coordinator.New(coordinator.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 5 * time.Second, ScheduleTimeout: -1,
		CheckpointStorage: "file://" + t.TempDir(), Tokens: tokens, HTTPTLS: tc,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(co.Stop)
	return co.HTTPAddr()
}

// TestHTTPSAndClientConfig: a coordinator serving HTTPS is reached by the
// CLI only when it trusts the coordinator's CA (--ca-file, WEIR_CA_FILE or
// the client config file), never over plain HTTP; the config file also
// gives the coordinator URL and a token file; a renewed certificate is
// served without a restart.
func TestHTTPSAndClientConfig(t *testing.T) {
	for _, v := range []string{"WEIR_TOKEN", "WEIR_CA_FILE", "WEIR_COORDINATOR"} {
		t.Setenv(v, "")
	}
	t.Setenv("WEIR_CONFIG", filepath.Join(t.TempDir(), "none")) // named: must exist
	r := mustRun(t, 2, "jobs")
	if !strings.Contains(r.stderr, "client config") || !strings.Contains(r.stderr, "none") {
		t.Errorf("a named config file that is missing: %s", r)
	}

	dir := t.TempDir()
	ca := newTestCA(t, "ca")
	cert, key := ca.issue(t, dir, "server")
	tc, err := auth.ServerTLS(cert, key, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "tokens")
	tok := tokenOf(t, mustRun(t, 0, "token", "create", "ops", "--role", "admin", "--tokens-file", tokFile))
	tokens, err := auth.Open(tokFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := startTLSCoordinator(t, tc, tokens)
	url := "https://" + addr
	t.Setenv("WEIR_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no config file there

	r = mustRun(t, 1, "jobs", "--coordinator", url, "--token", tok)
	if !strings.Contains(r.stderr, "certificate") {
		t.Errorf("an untrusted certificate: %s", r)
	}
	r = mustRun(t, 1, "jobs", "--coordinator", "http://"+addr, "--token", tok)
	mustRun(t, 0, "jobs", "--coordinator", url, "--token", tok, "--ca-file", ca.file)
	t.Setenv("WEIR_CA_FILE", ca.file)
	mustRun(t, 0, "jobs", "--coordinator", url, "--token", tok)
	t.Setenv("WEIR_CA_FILE", "")

	// The config file: coordinator, token file and CA, relative to it.
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "token"), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(ca.file, filepath.Join(cfgDir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(cfgDir, "config")
	if err := os.WriteFile(conf, []byte("coordinator: "+url+"\ntoken_file: token\nca_file: ca.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WEIR_CONFIG", conf)
	mustRun(t, 0, "jobs")
	// A flag beats the file.
	mustRun(t, 1, "jobs", "--token", "weir_wrong")
	if err := os.WriteFile(conf, []byte("coordinatr: "+url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, 2, "jobs")
	if !strings.Contains(r.stderr, conf) || !strings.Contains(r.stderr, "coordinatr") {
		t.Errorf("a typo in the config file: %s", r)
	}
	t.Setenv("WEIR_CONFIG", "")

	// Renewal: the files are replaced by a certificate from another CA;
	// the next connection gets it.
	ca2 := newTestCA(t, "ca2")
	ca2.issue(t, dir, "server")
	mustRun(t, 1, "jobs", "--coordinator", url, "--token", tok, "--ca-file", ca.file)
	mustRun(t, 0, "jobs", "--coordinator", url, "--token", tok, "--ca-file", ca2.file)
}

// TestHTTPSClientCertificates: with a client CA, only a client presenting
// a certificate from it gets through the handshake.
func TestHTTPSClientCertificates(t *testing.T) {
	for _, v := range []string{"WEIR_TOKEN", "WEIR_CA_FILE", "WEIR_COORDINATOR"} {
		t.Setenv(v, "")
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	ca, clients, other := newTestCA(t, "ca"), newTestCA(t, "clients"), newTestCA(t, "other")
	cert, key := ca.issue(t, dir, "server")
	tc, err := auth.ServerTLS(cert, key, clients.file, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + startTLSCoordinator(t, tc, nil)
	ccert, ckey := clients.issue(t, dir, "cli")
	ocert, okey := other.issue(t, dir, "intruder")
	mustRun(t, 1, "jobs", "--coordinator", url, "--ca-file", ca.file)
	mustRun(t, 1, "jobs", "--coordinator", url, "--ca-file", ca.file, "--cert-file", ocert, "--key-file", okey)
	mustRun(t, 0, "jobs", "--coordinator", url, "--ca-file", ca.file, "--cert-file", ccert, "--key-file", ckey)
	mustRun(t, 2, "jobs", "--coordinator", url, "--ca-file", ca.file, "--cert-file", ccert)
	// The server flags go together.
	st := t.TempDir()
	base := []string{"coordinator", "--insecure", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--checkpoint-storage", "file://" + st}
	mustRun(t, 2, append(base, "--http-tls-cert", cert)...)
	mustRun(t, 2, append(base, "--http-client-ca", clients.file)...)
	r := mustRun(t, 2, append(base, "--http-tls-cert", cert, "--http-tls-key", okey)...)
	if !strings.Contains(r.stderr, "private key does not match") {
		t.Errorf("a key of another certificate: %s", r)
	}
}

func FuzzParseClientConfig(f *testing.F) {
	f.Add([]byte("coordinator: https://a:8081\ntoken: weir_x\nca_file: ca.pem\n"))
	f.Add([]byte("token_file: t\ncert_file: c\nkey_file: k\n"))
	f.Add([]byte("token: [1, 2]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseClientConfig(data)
		if err == nil && c.Token != "" && c.TokenFile != "" {
			t.Fatal("accepted both token and token_file")
		}
	})
}
