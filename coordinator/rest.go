package coordinator

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weir-stream/weir/coordinator/api"
)

// route is one path and the handler for each method it allows.
type route struct {
	path    string
	methods map[string]http.HandlerFunc
	// open routes are served without a token: the health check and the web
	// UI's static files (which hold no data; the page asks for a token).
	open bool
}

// Handler is the coordinator's HTTP API: /api/v1/..., /healthz, /metrics.
// Every error answer is JSON (api.ErrorBody); a path served with another
// method answers 405 with an Allow header.
func (c *Coordinator) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range c.routes() {
		allow := make([]string, 0, len(r.methods)+1)
		for m, h := range r.methods {
			mux.HandleFunc(m+" "+r.path, c.guard(m, r.open, h))
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		sort.Strings(allow)
		mux.HandleFunc(r.path, methodNotAllowed(strings.Join(allow, ", ")))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound,
			Message: fmt.Sprintf("no such path: %s (see docs/rest.md)", r.URL.Path)})
	})
	return recoverer(c, sameOrigin(mux))
}

// newHTTPServer bounds how long one connection may hold the server: a
// client that trickles its headers or body, or idles on a keep-alive
// connection, is cut off instead of holding a goroutine and a descriptor
// (1,000 slow-body connections were held for over a minute before).
// Nothing streams, so the write timeout only needs to cover the slowest
// handler: a submit that checks the job against Kafka, opens storage and
// reads a savepoint, each bounded by StorageTimeout.
func (c *Coordinator) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: min(c.cfg.HTTPReadTimeout, 10*time.Second),
		ReadTimeout:       c.cfg.HTTPReadTimeout,
		WriteTimeout:      c.cfg.HTTPReadTimeout + 3*c.cfg.StorageTimeout + 10*time.Second,
		IdleTimeout:       c.cfg.HTTPIdleTimeout,
		TLSConfig:         c.cfg.HTTPTLS,
	}
}

// serveHTTP serves the REST API on l, over TLS when Config.HTTPTLS is set
// (its certificates come from the config: GetCertificate or
// Certificates).
func (c *Coordinator) serveHTTP(l net.Listener) error {
	if c.cfg.HTTPTLS != nil {
		return c.httpSrv.ServeTLS(l, "", "")
	}
	return c.httpSrv.Serve(l)
}

// sameOrigin refuses a state-changing request (POST, PUT, PATCH, DELETE)
// that a browser sent from another origin: without it, any web page an
// operator visits could submit or cancel jobs, since a text/plain POST needs
// no CORS preflight. Requests without Origin or Sec-Fetch-Site (the CLI,
// curl) and the coordinator's own web UI pass. net/http's
// CrossOriginProtection does the checking; the answer is the API's JSON
// error.
func sameOrigin(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			origin := r.Header.Get("Origin")
			if origin == "" {
				origin = "(none; Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site") + ")"
			}
			writeError(w, &api.Error{Status: http.StatusForbidden, Code: api.CodeForbidden,
				Message: fmt.Sprintf("cross-origin %s refused: origin %s is not this coordinator (%s); "+
					"state-changing requests come from the coordinator's own web UI or from clients that send no Origin (the CLI, curl)",
					r.Method, origin, r.Host)})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// routes is every path the coordinator serves; docs/rest.md documents each
// (a test checks it).
func (c *Coordinator) routes() []route {
	return []route{
		{"/api/v1/overview", map[string]http.HandlerFunc{http.MethodGet: c.handleOverview}, false},
		{"/api/v1/workers", map[string]http.HandlerFunc{http.MethodGet: c.handleWorkers}, false},
		{"/api/v1/workers/{id}/drain", map[string]http.HandlerFunc{http.MethodPost: c.handleDrainWorker}, false},
		{"/api/v1/jobs", map[string]http.HandlerFunc{http.MethodGet: c.handleJobs, http.MethodPost: c.handleSubmit}, false},
		{"/api/v1/jobs/{id}", map[string]http.HandlerFunc{http.MethodGet: c.handleJob}, false},
		{"/api/v1/jobs/{id}/cancel", map[string]http.HandlerFunc{http.MethodPost: c.handleCancel}, false},
		{"/api/v1/jobs/{id}/spec", map[string]http.HandlerFunc{http.MethodGet: c.handleSpec}, false},
		{"/api/v1/jobs/{id}/checkpoints", map[string]http.HandlerFunc{http.MethodGet: c.handleCheckpoints}, false},
		{"/api/v1/jobs/{id}/checkpoints/{cid}", map[string]http.HandlerFunc{http.MethodGet: c.handleCheckpoint}, false},
		{"/api/v1/jobs/{id}/graph", map[string]http.HandlerFunc{http.MethodGet: c.handleGraph}, false},
		{"/api/v1/jobs/{id}/subtasks", map[string]http.HandlerFunc{http.MethodGet: c.handleSubtasks}, false},
		{"/api/v1/jobs/{id}/kafka", map[string]http.HandlerFunc{http.MethodGet: c.handleKafkaLag}, false},
		{"/api/v1/jobs/{id}/restarts", map[string]http.HandlerFunc{http.MethodGet: c.handleRestarts}, false},
		{"/api/v1/jobs/{id}/savepoints", map[string]http.HandlerFunc{http.MethodGet: c.handleSavepoints, http.MethodPost: c.handleTriggerSavepoint}, false},
		{"/api/v1/jobs/{id}/savepoints/{sid}", map[string]http.HandlerFunc{http.MethodGet: c.handleSavepoint}, false},
		{"/healthz", map[string]http.HandlerFunc{http.MethodGet: handleHealthz}, true},
		{"/{$}", map[string]http.HandlerFunc{http.MethodGet: handleIndex}, true},
		{"/ui/", map[string]http.HandlerFunc{http.MethodGet: handleWebAsset}, true},
		{"/metrics", map[string]http.HandlerFunc{http.MethodGet: promhttp.HandlerFor(c.registry, promhttp.HandlerOpts{}).ServeHTTP}, false},
	}
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, &api.Error{Status: http.StatusMethodNotAllowed, Code: api.CodeMethodNotAllowed,
			Message: fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)})
	}
}

// recoverer turns a panic in a handler into a 500 instead of a dropped
// connection, and logs it.
func recoverer(c *Coordinator, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				c.log.Error("HTTP handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal,
					Message: "internal error; see the coordinator log"})
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, e *api.Error) {
	writeJSON(w, e.Status, api.ErrorBody{Error: e})
}

func notFound(id string) *api.Error {
	return &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: fmt.Sprintf("job %q not found", id)}
}
