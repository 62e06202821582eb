package tlsconf

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki is a cluster CA, with its node files, and a stranger CA.
type pki struct {
	dir     string
	ca      *CA
	node    Files
	strange Files
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca, err := NewCA("cluster")
	if err != nil {
		t.Fatal(err)
	}
	node, err := ca.WriteFiles(dir, "node", LocalHosts(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("cluster") // same name, other key
	if err != nil {
		t.Fatal(err)
	}
	sdir := filepath.Join(dir, "stranger")
	if err := os.Mkdir(sdir, 0o700); err != nil {
		t.Fatal(err)
	}
	strange, err := other.WriteFiles(sdir, "node", LocalHosts(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{dir: dir, ca: ca, node: node, strange: strange}
}

func load(t *testing.T, f Files) *Source {
	t.Helper()
	s, err := Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serve runs an echo-one-line TLS server; it returns the address and a
// channel of the accepted connections' handshake errors.
func serve(t *testing.T, cfg *tls.Config) (string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	errs := make(chan error, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				err := tc.Handshake()
				errs <- err
				if err == nil {
					line, _ := bufio.NewReader(tc).ReadString('\n')
					_, _ = tc.Write([]byte(line))
				}
			}()
		}
	}()
	return l.Addr().String(), errs
}

func dial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	// TLS 1.3 reports a refused client certificate after the client's
	// handshake returns: a round trip surfaces it.
	if _, err := c.Write([]byte("ping\n")); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func TestMutualTLSWithinTheCluster(t *testing.T) {
	p := newPKI(t)
	srv, cli := load(t, p.node), load(t, p.node)
	addr, errs := serve(t, srv.ServerConfig())
	c, err := dial(addr, cli.ClientConfig("127.0.0.1"))
	if err != nil {
		t.Fatalf("a client of the cluster's CA: %v", err)
	}
	defer c.Close()
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("version %x, want TLS 1.3", v)
	}
	if err := <-errs; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

func TestClientFromAnotherCAIsRefused(t *testing.T) {
	p := newPKI(t)
	addr, errs := serve(t, load(t, p.node).ServerConfig())
	// The stranger trusts the cluster's CA, so only the server's check of
	// the client's certificate can stop it.
	f := p.strange
	f.CA = p.node.CA
	if c, err := dial(addr, load(t, f).ClientConfig("127.0.0.1")); err == nil {
		c.Close()
		t.Fatal("a client with a certificate of another CA was let in")
	}
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("server: %v, want unknown authority", err)
	}
}

func TestServerFromAnotherCAIsRefused(t *testing.T) {
	p := newPKI(t)
	f := p.strange
	f.CA = p.node.CA
	addr, _ := serve(t, load(t, f).ServerConfig())
	_, err := dial(addr, load(t, p.node).ClientConfig("127.0.0.1"))
	if err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("dial: %v, want the server's certificate refused", err)
	}
}

func TestClientWithoutCertificateIsRefused(t *testing.T) {
	p := newPKI(t)
	addr, errs := serve(t, load(t, p.node).ServerConfig())
	cfg := load(t, p.node).ClientConfig("127.0.0.1")
	cfg.GetClientCertificate = nil
	if c, err := dial(addr, cfg); err == nil {
		c.Close()
		t.Fatal("a client without a certificate was let in")
	}
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "didn't provide a certificate") {
		t.Fatalf("server: %v", err)
	}
}

func TestPlaintextClientFails(t *testing.T) {
	p := newPKI(t)
	addr, errs := serve(t, load(t, p.node).ServerConfig())
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// An HTTP/2 preface, as a plaintext gRPC client sends.
	if _, err := c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err == nil {
		t.Fatal("the server accepted a plaintext client")
	}
}

func TestServerNameIsChecked(t *testing.T) {
	p := newPKI(t)
	certPEM, keyPEM, err := p.ca.Issue("elsewhere", []string{"elsewhere.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := Files{Cert: filepath.Join(p.dir, "e.crt"), Key: filepath.Join(p.dir, "e.key"), CA: p.node.CA}
	if err := errors2(writeFile(f.Cert, certPEM, 0o644), writeFile(f.Key, keyPEM, 0o600)); err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, load(t, f).ServerConfig())
	_, err = dial(addr, load(t, p.node).ClientConfig("127.0.0.1"))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("dial: %v, want the certificate refused for 127.0.0.1", err)
	}
}

func errors2(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func TestRotatedCertificateIsPickedUp(t *testing.T) {
	p := newPKI(t)
	srv := load(t, p.node)
	addr, _ := serve(t, srv.ServerConfig())
	cli := load(t, p.node)
	first := srv.Leaf().SerialNumber
	c, err := dial(addr, cli.ClientConfig("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first) != 0 {
		t.Fatalf("served serial %s, want %s", got, first)
	}
	c.Close()

	// A new certificate written over the old files is served from the
	// next handshake on, without a restart.
	if _, err := p.ca.WriteFiles(p.dir, "node", LocalHosts(), time.Hour); err != nil {
		t.Fatal(err)
	}
	c, err = dial(addr, cli.ClientConfig("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := c.ConnectionState().PeerCertificates[0].SerialNumber
	if got.Cmp(first) == 0 || got.Cmp(srv.Leaf().SerialNumber) != 0 {
		t.Fatalf("served serial %s after rotation; old %s, on disk %s", got, first, srv.Leaf().SerialNumber)
	}
}

func TestRotatedCAIsPickedUp(t *testing.T) {
	p := newPKI(t)
	srv, cli := load(t, p.node), load(t, p.node)
	addr, _ := serve(t, srv.ServerConfig())
	if c, err := dial(addr, cli.ClientConfig("127.0.0.1")); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	// The cluster moves to a new CA: both sides' files are replaced (they
	// share them here), and the old CA's certificates stop being enough.
	ca2, err := NewCA("cluster 2")
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(p.node.Cert)
	if err != nil {
		t.Fatal(err)
	}
	oldKey, err := os.ReadFile(p.node.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca2.WriteFiles(p.dir, "node", LocalHosts(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if c, err := dial(addr, cli.ClientConfig("127.0.0.1")); err != nil {
		t.Fatalf("after the CA rotation: %v", err)
	} else {
		c.Close()
	}
	// A client still holding the old certificate (and trusting both) is
	// refused now.
	stale := Files{Cert: filepath.Join(p.dir, "old.crt"), Key: filepath.Join(p.dir, "old.key"), CA: filepath.Join(p.dir, "both.crt")}
	if err := errors2(writeFile(stale.Cert, old, 0o644), writeFile(stale.Key, oldKey, 0o600)); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(stale.CA, append(p.ca.CertPEM(), ca2.CertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := dial(addr, load(t, stale).ClientConfig("127.0.0.1")); err == nil {
		c.Close()
		t.Fatal("a certificate of the replaced CA was let in")
	}
}

func TestBrokenRotationKeepsThePreviousFiles(t *testing.T) {
	p := newPKI(t)
	srv := load(t, p.node)
	addr, _ := serve(t, srv.ServerConfig())
	first := srv.Leaf().SerialNumber
	// A key that does not match the certificate (a rotation caught half
	// way) must not take the server down.
	_, keyPEM, err := p.ca.Issue("x", LocalHosts(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(p.node.Key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := dial(addr, load(t, p.strangeTrusting(t)).ClientConfig("127.0.0.1"))
	if err != nil {
		t.Fatalf("after a broken rotation: %v", err)
	}
	defer c.Close()
	if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first) != 0 {
		t.Fatalf("served serial %s, want the previous %s", got, first)
	}
}

// strangeTrusting returns cluster client files that do not share the
// server's (now broken) node files: a second certificate of the CA.
func (p *pki) strangeTrusting(t *testing.T) Files {
	t.Helper()
	dir := filepath.Join(p.dir, "client")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := p.ca.WriteFiles(dir, "client", LocalHosts(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadNamesWhatIsWrong(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name string
		f    Files
		want string
	}{
		{"partial", Files{Cert: p.node.Cert}, "missing: [key CA]"},
		{"no cert", Files{Cert: filepath.Join(p.dir, "nope.crt"), Key: p.node.Key, CA: p.node.CA}, "nope.crt"},
		{"CA not PEM", Files{Cert: p.node.Cert, Key: p.node.Key, CA: p.node.Key}, "holds no PEM certificate"},
		{"key of another cert", Files{Cert: p.node.Cert, Key: p.strange.Key, CA: p.node.CA}, "private key does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.f, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEnsureDevReusesItsCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	f, err := EnsureDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := load(t, f)
	serialA, caA := s.Leaf().SerialNumber, mustRead(t, f.CA)
	f2, err := EnsureDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f2 != f || string(mustRead(t, f2.CA)) != string(caA) || load(t, f2).Leaf().SerialNumber.Cmp(serialA) != 0 {
		t.Fatal("a second EnsureDev did not reuse the CA and the node certificate")
	}
	// A lost node certificate is issued again by the same CA.
	if err := os.Remove(f.Cert); err != nil {
		t.Fatal(err)
	}
	f3, err := EnsureDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(mustRead(t, f3.CA)) != string(caA) || load(t, f3).Leaf().SerialNumber.Cmp(serialA) == 0 {
		t.Fatal("want a new node certificate from the same CA")
	}
	if st, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v %v, want mode 0600", st, err)
	}
	// A corrupt CA is reported, not silently replaced (that would orphan
	// every certificate it signed).
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureDev(dir); err == nil || !strings.Contains(err.Error(), "remove") {
		t.Fatalf("EnsureDev on a corrupt CA: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
