package coordinator

import (
	"fmt"
	"net/http"
	"path"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/auth"
)

// Authenticator says who holds a bearer token (auth.Tokens).
type Authenticator interface {
	Lookup(token string) (auth.Principal, bool)
}

// roleFor is the role a method needs on a route that is not open: reading
// needs a viewer, anything that changes something an operator. Routes
// only an admin may use would be listed here; there are none yet.
func roleFor(method string) auth.Role {
	switch method {
	case http.MethodGet, http.MethodHead:
		return auth.Viewer
	}
	return auth.Operator
}

// guard authenticates and authorises one route's method, and writes an
// audit line for every call that may change something, refused or not:
// who (the token's name), what (method, path, job) and the answer's status.
// Without an Authenticator (Config.Tokens nil: --insecure) everyone may do
// everything, and the audit lines say who as "-".
func (c *Coordinator) guard(method string, open bool, h http.HandlerFunc) http.HandlerFunc {
	need := roleFor(method)
	mutating := need > auth.Viewer
	return func(w http.ResponseWriter, r *http.Request) {
		who := auth.Principal{Name: "-", Role: auth.Admin}
		var refuse *api.Error
		if c.cfg.Tokens != nil && !open {
			tok := auth.Bearer(r)
			p, ok := auth.Principal{}, false
			if tok != "" {
				p, ok = c.cfg.Tokens.Lookup(tok)
			}
			switch {
			case !ok:
				who = auth.Principal{Name: "-"}
				msg := "this call needs a token: send Authorization: Bearer <token> (weir --token, WEIR_TOKEN; docs/security.md)"
				if tok != "" {
					msg = "the token is not valid (unknown, or revoked from the tokens file)"
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="weir"`)
				refuse = &api.Error{Status: http.StatusUnauthorized, Code: api.CodeUnauthorized, Message: msg}
			case p.Role < need:
				who = p
				refuse = &api.Error{Status: http.StatusForbidden, Code: api.CodeForbidden,
					Message: fmt.Sprintf("token %q has role %s; %s %s needs %s or above", p.Name, p.Role, method, r.URL.Path, need)}
			default:
				who = p
			}
		}
		if !mutating {
			if refuse != nil {
				writeError(w, refuse)
				return
			}
			h(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		if refuse != nil {
			writeError(sw, refuse)
		} else {
			h(sw, r)
		}
		job := r.PathValue("id")
		if job == "" && sw.status == http.StatusCreated {
			job = path.Base(sw.Header().Get("Location"))
		}
		role := "-"
		if who.Role != 0 && c.cfg.Tokens != nil {
			role = who.Role.String()
		}
		c.audit.Info("audit", "who", who.Name, "role", role, "method", r.Method, "path", r.URL.Path,
			"job", job, "status", sw.code(), "remote", r.RemoteAddr)
	}
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
