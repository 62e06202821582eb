package ha_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/weir-stream/weir/coordinator/ha"
)

// TestStandbyRedirectKeepsScheme: a standby serving HTTPS redirects to the
// leader's https:// address (its REST API serves like the standby's), one
// serving HTTP to http://.
func TestStandbyRedirectKeepsScheme(t *testing.T) {
	e := startEtcd(t)
	a, b := connect(t, e.Endpoint(), 2*time.Second), connect(t, e.Endpoint(), 2*time.Second)
	if _, err := a.Campaign(context.Background(), ha.Info{ID: "leader", HTTPAddr: "10.0.0.1:8081"}); err != nil {
		t.Fatal(err)
	}
	h := ha.StandbyHandler(b, ha.Info{ID: "standby", HTTPAddr: "10.0.0.2:8081"})
	noFollow := func(c *http.Client) *http.Client {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return c
	}
	for _, x := range []struct {
		srv  *httptest.Server
		want string
	}{
		{httptest.NewServer(h), "http://10.0.0.1:8081/api/v1/jobs"},
		{httptest.NewTLSServer(h), "https://10.0.0.1:8081/api/v1/jobs"},
	} {
		resp, err := noFollow(x.srv.Client()).Get(x.srv.URL + "/api/v1/jobs")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		x.srv.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != x.want {
			t.Fatalf("%d Location %q, want 307 to %s", resp.StatusCode, resp.Header.Get("Location"), x.want)
		}
	}
}
