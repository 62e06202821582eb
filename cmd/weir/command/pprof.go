package command

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/spf13/cobra"
)

// addPprofFlag adds --pprof-addr to a process verb.
func addPprofFlag(c *cobra.Command, addr *string) {
	c.Flags().StringVar(addr, "pprof-addr", "", "serve Go's profiles (net/http/pprof, /debug/pprof/) on this address, apart from the REST API and without authentication: keep it on localhost (default: off)")
}

// startPprof serves net/http/pprof on its own listener, so profiles are
// never reachable through the REST API's address, tokens or not, and a
// profile that takes 30 s does not count against its timeouts. It returns
// a function that stops it.
func startPprof(addr string, logger *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("--pprof-addr: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace streams for ?seconds=.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof server stopped", "err", err)
		}
	}()
	logger.Warn("serving Go profiles without authentication", "pprof", fmt.Sprintf("http://%s/debug/pprof/", ln.Addr()))
	return func() {
		_ = srv.Close()
		<-done
	}, nil
}
