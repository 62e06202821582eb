package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// weir dev kafka's TLS and SASL flags go in pairs; a wrong combination is
// a usage error (exit 2) naming the flags, before any broker starts. (A
// broker started with them: tests/eos TestExactlyOnceSecureKafka.)
func TestDevKafkaSecurityFlags(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-client-ca", "ca.pem"}, "--tls-client-ca needs --tls-cert and --tls-key"},
		{[]string{"--sasl-user", "weir"}, "--sasl-user and --sasl-password-file go together"},
		{[]string{"--sasl-user", "weir", "--sasl-password-file", "/nonexistent/pw"}, "--sasl-password-file: open /nonexistent/pw"},
		{[]string{"--sasl-user", "weir", "--sasl-password-file", empty}, "is empty"},
	} {
		r := run(t, append([]string{"dev", "kafka", "--addr", "127.0.0.1:0"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("weir dev kafka %v: want exit 2 with %q, got %s", tc.args, tc.want, r)
		}
	}
}

// --metrics-token-file: one token a line, blank and # lines skipped; a file
// without a token is a usage error rather than an open /metrics.
func TestReadMetricsTokens(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "tokens")
	if err := os.WriteFile(good, []byte("# prometheus\n\n  abc  \ndef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readMetricsTokens(good)
	if err != nil || strings.Join(got, ",") != "abc,def" {
		t.Fatalf("tokens %q, %v", got, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readMetricsTokens(empty); err == nil || !strings.Contains(err.Error(), "no token in it") {
		t.Fatalf("empty file: %v", err)
	}
	r := run(t, "worker", "--metrics-token-file", empty)
	if r.code != 2 || !strings.Contains(r.stderr, "no token in it") {
		t.Fatalf("weir worker with an empty token file: %s", r)
	}
}
