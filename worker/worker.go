package worker

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/weir-stream/weir/internal/netaddr"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// Worker is one worker process.
type Worker struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	tasks map[taskKey]*runningTask
	// notify wakes the session's send loop when a task changed state or
	// a checkpoint message is waiting in outbox.
	notify chan struct{}
	outbox []*controlpb.WorkerMessage
	// deployed is the last DeployTask with a spec and placements per job,
	// which a DeployTask.as_before of the same attempt refers to.
	deployed map[string]*controlpb.DeployTask

	connected atomic.Bool
	registry  *prometheus.Registry
	drain     drainState // drain.go

	life      sync.Mutex
	started   bool
	stopped   bool
	wg        sync.WaitGroup // servers and the session loop
	taskWG    sync.WaitGroup // task goroutines
	stopOnce  sync.Once
	dataSrv   *grpc.Server
	httpSrv   *http.Server
	dataLn    net.Listener
	httpLn    net.Listener
	exchange  Exchange
	conn      *grpc.ClientConn
	advertise string
	httpAdv   string
}

// New validates cfg and returns a worker that is not yet running.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Worker{
		cfg: cfg, log: cfg.Logger.With("component", "worker", "worker", cfg.ID),
		ctx: ctx, cancel: cancel,
		tasks:    map[taskKey]*runningTask{},
		notify:   make(chan struct{}, 1),
		deployed: map[string]*controlpb.DeployTask{},
	}
	w.drain.init()
	w.registry = prometheus.NewRegistry()
	if err := errors.Join(w.registry.Register(&collector{w: w}), w.registry.Register(userCollector{w: w}),
		w.registry.Register(collectors.NewGoCollector()),
		w.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))); err != nil {
		cancel()
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	return w, nil
}

// ID is the worker's id.
func (w *Worker) ID() string { return w.cfg.ID }

// Start listens on the data and HTTP addresses and starts the session loop.
// It does not block; reaching the coordinator happens in the background.
func (w *Worker) Start() error {
	w.life.Lock()
	defer w.life.Unlock()
	if w.started || w.stopped {
		return errors.New("worker: Start called twice or after Stop")
	}
	dl, err := net.Listen("tcp", w.cfg.DataAddr)
	if err != nil {
		return fmt.Errorf("worker: listen for data on %s: %w", w.cfg.DataAddr, err)
	}
	hl, err := net.Listen("tcp", w.cfg.HTTPAddr)
	if err != nil {
		dl.Close()
		return fmt.Errorf("worker: listen for HTTP on %s: %w", w.cfg.HTTPAddr, err)
	}
	// gRPC's own reconnect backoff (1s base) would add to ours; align it.
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = w.cfg.ReconnectMin, w.cfg.ReconnectMax
	target, opts := coordinatorTarget(w.cfg.CoordinatorAddr)
	conn, err := grpc.NewClient(target, append(opts,
		w.cfg.TLS.DialOption(),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second}))...)
	if err != nil {
		dl.Close()
		hl.Close()
		return fmt.Errorf("worker: coordinator address %q: %w", w.cfg.CoordinatorAddr, err)
	}
	w.started = true
	w.conn = conn
	w.dataLn, w.httpLn = dl, hl
	w.advertise = w.cfg.AdvertiseDataAddr
	if w.advertise == "" {
		w.advertise = netaddr.Advertised(dl.Addr().String())
	}
	w.httpAdv = netaddr.Advertised(hl.Addr().String())
	w.dataSrv = grpc.NewServer(w.cfg.TLS.ServerOptions()...)
	if w.cfg.NewExchange != nil {
		w.exchange = w.cfg.NewExchange(w.cfg.Logger, w.cfg.TLS)
		w.exchange.Register(w.dataSrv)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", requireToken(w.cfg.MetricsTokens, promhttp.HandlerFor(w.registry, promhttp.HandlerOpts{})))
	mux.HandleFunc("GET /healthz", w.handleHealthz)
	mux.HandleFunc("GET /readyz", w.handleReadyz)
	// Bounded like the coordinator's REST server (docs/security.md): a
	// client that trickles a request or idles on a keep-alive connection
	// is cut off instead of holding a goroutine and a descriptor.
	w.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}

	w.wg.Add(3)
	go func() {
		defer w.wg.Done()
		if err := w.dataSrv.Serve(dl); err != nil {
			w.log.Error("data server stopped", "err", err)
		}
	}()
	go func() {
		defer w.wg.Done()
		if err := w.httpSrv.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("HTTP server stopped", "err", err)
		}
	}()
	go func() {
		defer w.wg.Done()
		w.sessionLoop()
	}()
	w.log.Info("worker started", "data", w.advertise, "http", w.httpAdv, "slots", w.cfg.Slots, "coordinator", w.cfg.CoordinatorAddr)
	return nil
}

// DataAddr is the advertised data address ("" before Start).
func (w *Worker) DataAddr() string {
	w.life.Lock()
	defer w.life.Unlock()
	return w.advertise
}

// HTTPAddr is the bound HTTP address ("" before Start).
func (w *Worker) HTTPAddr() string {
	w.life.Lock()
	defer w.life.Unlock()
	if w.httpLn == nil {
		return ""
	}
	return w.httpLn.Addr().String()
}

// Connected reports whether the worker is registered with the coordinator.
func (w *Worker) Connected() bool { return w.connected.Load() }

// Stop cancels every task, leaves the coordinator, closes the servers and
// returns when every goroutine the worker started has exited. Idempotent.
func (w *Worker) Stop() {
	w.stopOnce.Do(func() {
		w.life.Lock()
		w.stopped = true
		w.life.Unlock()
		w.cancel()
		w.cancelAllTasks()
		w.taskWG.Wait()
		if w.dataSrv != nil {
			w.dataSrv.Stop()
		}
		if w.httpSrv != nil {
			w.httpSrv.Close()
		}
		w.wg.Wait()
		if w.exchange != nil {
			w.exchange.Close()
		}
		if w.conn != nil {
			w.conn.Close()
		}
	})
}

// requireToken answers only requests with "Authorization: Bearer T" for a
// T of tokens (compared in constant time); no tokens: everything.
func requireToken(tokens []string, h http.Handler) http.Handler {
	if len(tokens) == 0 {
		return h
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		match := 0
		for _, t := range tokens {
			match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
		}
		if !ok || match == 0 {
			rw.Header().Set("WWW-Authenticate", `Bearer realm="weir worker metrics"`)
			http.Error(rw, "this worker's /metrics wants a bearer token (weir worker --metrics-token-file)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(rw, r)
	})
}

func (w *Worker) handleHealthz(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(map[string]any{"status": "ok", "connected": w.connected.Load()})
}

// handleReadyz answers 503 until the worker is registered with a
// coordinator, and whenever it is not: a readiness probe on it holds a
// rolling upgrade of workers (deploy/helm) until the replaced worker offers
// its slots again, so the next one does not drain onto too few slots.
func (w *Worker) handleReadyz(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	if !w.connected.Load() {
		rw.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(rw).Encode(map[string]any{"status": "not ready", "connected": false})
		return
	}
	_ = json.NewEncoder(rw).Encode(map[string]any{"status": "ready", "connected": true})
}

// Registry is the worker's Prometheus registry (served on /metrics).
func (w *Worker) Registry() *prometheus.Registry { return w.registry }

// newClient is a control-plane client on the worker's connection.
func (w *Worker) newClient() controlpb.CoordinatorClient {
	return controlpb.NewCoordinatorClient(w.conn)
}

// coordinatorTarget turns "host:port" or "h1:p1,h2:p2,…" (the coordinators
// of an HA cluster) into a gRPC target. With several, gRPC's pick_first
// tries them in order and again after a broken connection: only the
// leader listens for workers, so the worker ends up registered with it.
func coordinatorTarget(addrs string) (string, []grpc.DialOption) {
	list := strings.Split(addrs, ",")
	if len(list) == 1 {
		return addrs, nil
	}
	r := manual.NewBuilderWithScheme("weir-coordinators")
	as := make([]resolver.Address, 0, len(list))
	for _, a := range list {
		a = strings.TrimSpace(a)
		// With TLS the certificate must name the coordinator dialed, not
		// the resolver's made-up authority.
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		as = append(as, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(resolver.State{Addresses: as})
	return r.Scheme() + ":///coordinators", []grpc.DialOption{grpc.WithResolvers(r)}
}
