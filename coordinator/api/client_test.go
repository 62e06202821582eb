package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTokenFollowsRedirect: a standby coordinator redirects to the leader,
// which may be another host; the token goes along (net/http alone drops
// Authorization there), but never from https down to http.
func TestTokenFollowsRedirect(t *testing.T) {
	var got string
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"workers": []}`))
	}))
	defer leader.Close()
	// "localhost" is another host than the leader's 127.0.0.1 to net/http.
	other := strings.Replace(leader.URL, "127.0.0.1", "localhost", 1)
	redirectTo := func(target string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
		}
	}
	standby := httptest.NewServer(redirectTo(other))
	defer standby.Close()
	if _, err := NewClient(standby.URL, WithToken("weir_t")).Workers(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got != "Bearer weir_t" {
		t.Fatalf("the leader got Authorization %q", got)
	}

	got = ""
	tlsStandby := httptest.NewTLSServer(redirectTo(other))
	defer tlsStandby.Close()
	cl := NewClient(tlsStandby.URL, WithToken("weir_t"), WithTLS(tlsStandby.Client().Transport.(*http.Transport).TLSClientConfig))
	if _, err := cl.Workers(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got != "" {
		t.Fatalf("the token went from https to http: %q", got)
	}
}
