package command

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/ha/devetcd"
	"github.com/weir-stream/weir/internal/tlsconf/tlstest"
)

// The TLS and etcd flags refuse a partial or unreadable set with exit 2,
// saying which flags.
func TestTLSFlagsUsage(t *testing.T) {
	pki := tlstest.New(t)
	missing := filepath.Join(t.TempDir(), "none.crt")
	anyAddr := []string{"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--allowed-paths", t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append([]string{"coordinator", "--tls-cert", pki.Cluster.Cert}, anyAddr...), "missing: [key CA]"},
		{[]string{"worker", "--tls-ca", pki.Cluster.CA}, "missing: [certificate key]"},
		{[]string{"worker", "--tls-cert", missing, "--tls-key", pki.Cluster.Key, "--tls-ca", pki.Cluster.CA}, "none.crt"},
		{append([]string{"coordinator", "--etcd", "127.0.0.1:1", "--etcd-cert", pki.Cluster.Cert}, anyAddr...), "--etcd-cert, --etcd-key, --etcd-ca"},
		{append([]string{"coordinator", "--etcd", "127.0.0.1:1", "--etcd-user", "weir"}, anyAddr...), "--etcd-user and --etcd-password-file go together"},
		{append([]string{"coordinator", "--etcd", "127.0.0.1:1", "--etcd-user", "weir", "--etcd-password-file", missing}, anyAddr...), "--etcd-password-file"},
		{[]string{"dev", "etcd", "--user", "weir"}, "--user and --password-file go together"},
		{[]string{"dev", "etcd", "--tls-key", pki.Cluster.Key}, "--tls-cert, --tls-key, --tls-ca"},
	} {
		r := run(t, tc.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("weir %s: want exit 2 saying %q, got %s", strings.Join(tc.args, " "), tc.want, r)
		}
	}
}

// weir coordinator --etcd reaches an etcd that requires TLS with client
// certificates and a user: a wrong password exits 1 saying so; the right
// one leads.
func TestCoordinatorEtcdTLSAndUser(t *testing.T) {
	pki := tlstest.New(t)
	e, err := devetcd.Start(devetcd.Config{TLS: pki.Cluster, User: "weir", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	storage := t.TempDir()
	args := func(password string) []string {
		return []string{"coordinator", "--etcd", e.Endpoint(), "--http-addr", deadAddr(t), "--grpc-addr", deadAddr(t),
			"--etcd-cert", pki.Cluster.Cert, "--etcd-key", pki.Cluster.Key, "--etcd-ca", pki.Cluster.CA,
			"--etcd-user", "weir", "--etcd-password-file", writeFile(t, "pw-"+password, password+"\n"),
			"--tls-cert", pki.Cluster.Cert, "--tls-key", pki.Cluster.Key, "--tls-ca", pki.Cluster.CA,
			"--checkpoint-storage", "file://" + storage, "--allowed-paths", storage, "--log-level", "warn"}
	}
	if r := run(t, args("guess")...); r.code != ExitFailed || !strings.Contains(r.stderr, "authentication failed") {
		t.Fatalf("a wrong etcd password: want exit 1 saying authentication failed, got %s", r)
	}

	a := args("s3cret")
	url := "http://" + a[4]
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := execute(a, &out, &errb)
		done <- result{code: code, stdout: out.String(), stderr: errb.String()}
	}()
	eventually(t, 30*time.Second, func() (bool, string) {
		select {
		case r := <-done:
			t.Fatalf("weir coordinator exited: %s", r)
		default:
		}
		ov, err := api.NewClient(url).Overview(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return ov.Coordinator.Role == "leader" && !ov.Insecure, ov.Coordinator.Role
	})
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("after an interrupt: %s", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("weir coordinator did not stop within 20s of an interrupt")
	}
}
