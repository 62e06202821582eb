package ha

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
)

// StandbyHandler serves the REST API of a coordinator that does not lead:
// /healthz answers for itself (200, role standby, and who leads); every
// other request is redirected (307, method and body kept) to the same path
// on the leader, or answered 503 with a JSON error while there is none.
func StandbyHandler(c *Client, self Info) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		leader, ok, err := c.CurrentLeader(ctx)
		if r.URL.Path == "/healthz" {
			body := map[string]any{"status": "ok", "role": "standby", "id": self.ID}
			if ok {
				body["leader"] = leader
			}
			writeJSON(w, http.StatusOK, body)
			return
		}
		if err != nil || !ok || leader.HTTPAddr == "" || leader.HTTPAddr == self.HTTPAddr {
			msg := "this coordinator is a standby and no leader is elected yet; retry shortly"
			if err != nil {
				msg = "this coordinator is a standby and cannot reach etcd to find the leader: " + err.Error()
			}
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: &api.Error{Code: api.CodeUnavailable, Message: msg}})
			return
		}
		u := *r.URL
		// The leader serves like this standby: HTTPS when it does.
		u.Scheme, u.Host = "http", leader.HTTPAddr
		if r.TLS != nil {
			u.Scheme = "https"
		}
		w.Header().Set("X-Weir-Leader", leader.ID)
		http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
