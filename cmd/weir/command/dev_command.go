package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/connectors/kafka/devbroker"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/ha/devetcd"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/examples"
	"github.com/weir-stream/weir/internal/tlsconf"
)

type devFlags struct {
	dataDir   string
	httpAddr  string
	grpcAddr  string
	kafkaAddr string
	etcdAddr  string
	// etcdPeerAddr and the workers' addresses: every port weir dev opens
	// has a flag, so two dev clusters run side by side.
	etcdPeerAddr   string
	workerDataAddr string
	workerHTTPAddr string
	workers        int
	slots          int
	example        bool
	rate           float64
	logLevel       string
	logFormat      string
	insecure       bool
	// registry starts a development schema registry on registryAddr.
	registry     bool
	registryAddr string
}

func newDevCommand(g *globals) *cobra.Command {
	var f devFlags
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole weir cluster on this machine: broker, coordinator and workers",
		Long: "Run a development cluster: an embedded etcd, an embedded Kafka-protocol broker, one coordinator and\n" +
			"N worker processes, with all data under --data-dir. With --example it submits the\n" +
			"ip-visits example job and keeps `weir loadgen` feeding its input topic.\n" +
			"Ctrl-C stops everything.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd.Context(), g, f) },
	}
	c.Flags().StringVar(&f.dataDir, "data-dir", "./.weir", "directory for broker data, checkpoints and logs")
	c.Flags().StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8081", "coordinator REST API and web UI address")
	c.Flags().StringVar(&f.grpcAddr, "grpc-addr", "127.0.0.1:6123", "coordinator address for workers")
	c.Flags().StringVar(&f.kafkaAddr, "kafka-addr", "127.0.0.1:9092", "development Kafka broker address")
	c.Flags().StringVar(&f.etcdAddr, "etcd-addr", "127.0.0.1:2379", "embedded etcd client address (the coordinator's leader election and job store)")
	c.Flags().StringVar(&f.etcdPeerAddr, "etcd-peer-addr", "127.0.0.1:0", "embedded etcd peer address (port 0: a free one)")
	c.Flags().StringVar(&f.workerDataAddr, "worker-data-addr", "127.0.0.1:0", "data address of worker 1; worker N gets port+N-1 (port 0: each a free one)")
	c.Flags().StringVar(&f.workerHTTPAddr, "worker-http-addr", "127.0.0.1:0", "/metrics and /healthz address of worker 1; worker N gets port+N-1 (port 0: each a free one)")
	c.Flags().IntVar(&f.workers, "workers", 2, "number of worker processes (one that exits is started again, with backoff)")
	c.Flags().IntVar(&f.slots, "slots", 4, "task slots per worker")
	c.Flags().BoolVar(&f.example, "example", false, "submit examples/ip-visits.yaml and feed it with weir loadgen")
	c.Flags().Float64Var(&f.rate, "example-rate", 2000, "events per second loadgen writes with --example")
	c.Flags().StringVar(&f.logLevel, "log-level", "info", "log level of the processes")
	c.Flags().StringVar(&f.logFormat, "log-format", "text", "log format of the processes: text or json")
	c.Flags().BoolVar(&f.insecure, "insecure", false, "run the cluster's connections without mutual TLS (default: a local CA and certificates under DATA-DIR/tls); the REST API still wants the admin token")
	c.Flags().BoolVar(&f.registry, "schema-registry", false, "also start a development schema registry (in memory) for formats avro, protobuf and json_schema")
	c.Flags().StringVar(&f.registryAddr, "schema-registry-addr", defaultRegistryAddr, "development schema registry address (with --schema-registry)")
	addConfigFlag(c)
	c.AddCommand(newDevKafkaCommand(g), newDevEtcdCommand(g), newDevRegistryCommand(g))
	return c
}

func newDevEtcdCommand(g *globals) *cobra.Command {
	var (
		cfg          devetcd.Config
		passwordFile string
	)
	c := &cobra.Command{
		Use:   "etcd",
		Short: "Run only a development etcd (one embedded member) for coordinators started with --etcd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.TLS.Validate(); err != nil {
				return usageError{fmt.Errorf("--tls-cert, --tls-key, --tls-ca: %w", err)}
			}
			if (cfg.User == "") != (passwordFile == "") {
				return usagef("--user and --password-file go together")
			}
			if passwordFile != "" {
				pw, err := os.ReadFile(passwordFile)
				if err != nil {
					return usageError{fmt.Errorf("--password-file: %w", err)}
				}
				if cfg.Password = strings.TrimRight(string(pw), "\r\n"); cfg.Password == "" {
					return usagef("--password-file %s is empty", passwordFile)
				}
			}
			if cfg.DataDir != "" {
				if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
					return err
				}
			}
			s, err := devetcd.Start(cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			scheme := "plaintext"
			if cfg.TLS.Enabled() {
				scheme = "TLS, client certificates required"
			}
			fmt.Fprintf(g.stdout, "etcd listening on %s (%s; data in %s)\n", s.Endpoint(), scheme, orTemp(cfg.DataDir))
			select {
			case <-cmd.Context().Done():
				return nil
			case err := <-s.Err():
				return fmt.Errorf("etcd stopped: %w", err)
			}
		},
	}
	c.Flags().StringVar(&cfg.ClientAddr, "addr", "127.0.0.1:2379", "client address")
	c.Flags().StringVar(&cfg.PeerAddr, "peer-addr", "127.0.0.1:0", "peer address of the single member")
	c.Flags().StringVar(&cfg.DataDir, "data-dir", "", "directory that keeps etcd's data across restarts (default: a temporary directory)")
	c.Flags().StringVar(&cfg.TLS.Cert, "tls-cert", "", "PEM server certificate: serve clients over TLS (with --tls-key and --tls-ca)")
	c.Flags().StringVar(&cfg.TLS.Key, "tls-key", "", "PEM private key of --tls-cert")
	c.Flags().StringVar(&cfg.TLS.CA, "tls-ca", "", "PEM CA certificate(s): clients must present a certificate one of them signed")
	c.Flags().StringVar(&cfg.User, "user", "", "turn etcd's authentication on at the first start, with this user (read and write on every key; with --password-file)")
	c.Flags().StringVar(&passwordFile, "password-file", "", "file holding the password of --user (root gets the same one)")
	return c
}

func orTemp(s string) string {
	if s == "" {
		return "a temporary directory"
	}
	return s
}

func newDevKafkaCommand(g *globals) *cobra.Command {
	var (
		cfg          devbroker.Config
		passwordFile string
	)
	c := &cobra.Command{
		Use:   "kafka",
		Short: "Run only the development Kafka-protocol broker (franz-go kfake)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			if cfg.TLSClientCA != "" && cfg.TLSCert == "" {
				return usagef("--tls-client-ca needs --tls-cert and --tls-key")
			}
			if (cfg.SASLUser == "") != (passwordFile == "") {
				return usagef("--sasl-user and --sasl-password-file go together")
			}
			if passwordFile != "" {
				pw, err := os.ReadFile(passwordFile)
				if err != nil {
					return usageError{fmt.Errorf("--sasl-password-file: %w", err)}
				}
				if cfg.SASLPassword = strings.TrimRight(string(pw), "\r\n"); cfg.SASLPassword == "" {
					return usagef("--sasl-password-file %s is empty", passwordFile)
				}
			}
			if cfg.DataDir != "" {
				if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
					return err
				}
			}
			b, err := devbroker.Start(cfg)
			if err != nil {
				return fmt.Errorf("start broker on %s: %w", cfg.Addr, err)
			}
			defer b.Close()
			fmt.Fprintf(g.stdout, "kafka broker listening on %s (%s; data in %s)\n", b.Addr(), brokerSecurity(cfg), orNone(cfg.DataDir))
			<-cmd.Context().Done()
			return nil
		},
	}
	c.Flags().StringVar(&cfg.Addr, "addr", "127.0.0.1:9092", "listen address")
	c.Flags().StringVar(&cfg.DataDir, "data-dir", "", "directory that keeps the broker's data across restarts (default: in memory)")
	c.Flags().Int32Var(&cfg.Partitions, "partitions", 4, "partitions of auto-created topics")
	c.Flags().StringVar(&cfg.TLSCert, "tls-cert", "", "PEM server certificate: take only TLS connections (with --tls-key)")
	c.Flags().StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	c.Flags().StringVar(&cfg.TLSClientCA, "tls-client-ca", "", "PEM CA certificate(s): clients must present a certificate one of them signed")
	c.Flags().StringVar(&cfg.SASLUser, "sasl-user", "", "require SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) as this user (with --sasl-password-file)")
	c.Flags().StringVar(&passwordFile, "sasl-password-file", "", "file holding the password of --sasl-user")
	return c
}

// brokerSecurity says what the dev broker asks of its clients.
func brokerSecurity(cfg devbroker.Config) string {
	var parts []string
	switch {
	case cfg.TLSClientCA != "":
		parts = append(parts, "TLS, client certificates required")
	case cfg.TLSCert != "":
		parts = append(parts, "TLS")
	default:
		parts = append(parts, "plaintext")
	}
	if cfg.SASLUser != "" {
		parts = append(parts, fmt.Sprintf("SASL user %q", cfg.SASLUser))
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "memory"
	}
	return s
}

// child is one process weir dev supervises.
type child struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	started time.Time
}

func runDev(ctx context.Context, g *globals, f devFlags) error {
	if f.workers < 1 || f.slots < 1 {
		return usagef("--workers and --slots must be at least 1")
	}
	// The children would each refuse a bad level; refuse it before starting any.
	if _, err := newLogger(io.Discard, f.logLevel, f.logFormat); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return err
	}
	logDir := filepath.Join(dataDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", logDir, err)
	}
	workerAddrs := make([][2]string, f.workers)
	for i := range workerAddrs {
		for k, base := range []string{f.workerDataAddr, f.workerHTTPAddr} {
			a, err := nthAddr(base, i)
			if err != nil {
				return usagef("--worker-%s-addr: %v", []string{"data", "http"}[k], err)
			}
			workerAddrs[i][k] = a
		}
	}
	addrs := []string{f.httpAddr, f.grpcAddr, f.kafkaAddr, f.etcdAddr, f.etcdPeerAddr}
	if f.registry {
		addrs = append(addrs, f.registryAddr)
	}
	for _, wa := range workerAddrs {
		addrs = append(addrs, wa[0], wa[1])
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err == nil && port == "0" {
			continue // any free port
		}
		if seen[a] {
			return usagef("address %s is given twice (weir dev's --*-addr flags must differ)", a)
		}
		seen[a] = true
		if err := checkFree(a); err != nil {
			return err
		}
	}

	token, tokensFile, tokenFile, err := devToken(dataDir)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		children []*child
		argsOf   = map[string][]string{} // how each child was started
	)
	exited := make(chan *child, 16)
	start := func(name string, args ...string) error {
		logPath := filepath.Join(logDir, name+".log")
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		cmd := exec.Command(self, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		// Children die with weir dev even when it is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("start %s: %w", name, err)
		}
		c := &child{name: name, cmd: cmd, done: make(chan struct{}), started: time.Now()}
		go func() {
			c.err = cmd.Wait()
			logf.Close()
			close(c.done)
			select {
			case exited <- c:
			default:
			}
		}()
		mu.Lock()
		children = append(children, c)
		argsOf[name] = args
		mu.Unlock()
		return nil
	}
	stopAll := func() {
		mu.Lock()
		cs := append([]*child(nil), children...)
		mu.Unlock()
		for i := len(cs) - 1; i >= 0; i-- {
			// SIGINT, not SIGTERM: a worker drains on SIGTERM (moving its jobs
			// to the others first); everything here is going away at once.
			_ = cs[i].cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-cs[i].done:
			case <-time.After(10 * time.Second):
				_ = cs[i].cmd.Process.Kill()
				<-cs[i].done
			}
		}
	}
	defer stopAll()

	lvl, format := "--log-level="+f.logLevel, "--log-format="+f.logFormat
	// The secure path is the everyday one: a local CA under the data
	// directory, made once and reused, signs the certificate every
	// process presents.
	var tlsArgs, etcdClient []string
	if f.insecure {
		fmt.Fprintln(g.stderr, "weir dev: INSECURE (--insecure): the coordinator, the workers and etcd talk plaintext and unauthenticated (the REST API still wants the admin token)")
	} else {
		files, err := DevTLSFiles(dataDir)
		if err != nil {
			return err
		}
		tlsArgs = []string{"--tls-cert", files.Cert, "--tls-key", files.Key, "--tls-ca", files.CA}
		etcdClient = []string{"--etcd-cert", files.Cert, "--etcd-key", files.Key, "--etcd-ca", files.CA}
	}
	if err := start("kafka", "dev", "kafka", "--addr", f.kafkaAddr, "--data-dir", filepath.Join(dataDir, "kafka")); err != nil {
		return err
	}
	if f.registry {
		if err := start("schema-registry", "dev", "schema-registry", "--addr", f.registryAddr); err != nil {
			return err
		}
	}
	// etcd takes the cluster's certificate too: the coordinator reaches it
	// over TLS with the same client certificate.
	etcdArgs := []string{"dev", "etcd", "--addr", f.etcdAddr, "--peer-addr", f.etcdPeerAddr, "--data-dir", filepath.Join(dataDir, "etcd")}
	if err := start("etcd", append(etcdArgs, tlsArgs...)...); err != nil {
		return err
	}
	if err := waitReady(ctx, exited, func() bool { return dialable(f.etcdAddr) }); err != nil {
		return fmt.Errorf("%w (logs in %s)", err, logDir)
	}
	coArgs := []string{"coordinator", "--etcd", f.etcdAddr, "--grpc-addr", f.grpcAddr, "--http-addr", f.httpAddr,
		"--checkpoint-storage", "file://" + filepath.Join(dataDir, "checkpoints"), "--allowed-paths", dataDir, "--tokens-file", tokensFile, lvl, format}
	if err := start("coordinator", append(append(coArgs, tlsArgs...), etcdClient...)...); err != nil {
		return err
	}
	for i := 0; i < f.workers; i++ {
		args := []string{"worker", "--coordinator-grpc", f.grpcAddr,
			"--slots", strconv.Itoa(f.slots), "--id", fmt.Sprintf("worker-%d", i+1), "--allowed-paths", dataDir, lvl, format,
			"--data-addr", workerAddrs[i][0], "--http-addr", workerAddrs[i][1]}
		if err := start(fmt.Sprintf("worker-%d", i+1), append(args, tlsArgs...)...); err != nil {
			return err
		}
	}
	client := api.NewClient("http://"+f.httpAddr, api.WithToken(token))
	if err := waitReady(ctx, exited, func() bool {
		ws, err := client.Workers(ctx)
		return err == nil && len(ws) >= f.workers && dialable(f.kafkaAddr) && (!f.registry || dialable(f.registryAddr))
	}); err != nil {
		return fmt.Errorf("%w (logs in %s)", err, logDir)
	}
	tlsLine := "mutual TLS, local CA " + filepath.Join(dataDir, "tls", "ca.crt")
	if f.insecure {
		tlsLine = "INSECURE: plaintext, unauthenticated (--insecure)"
	}
	fmt.Fprintf(g.stdout, "weir dev is running\n  web UI and REST API: http://%s\n  Kafka broker:        %s\n  workers:             %d × %d slots\n  cluster connections: %s\n  logs:                %s\n"+
		"  admin token:         in %s (log in to the web UI with it; for weir verbs: export WEIR_TOKEN=$(cat %s))\n",
		f.httpAddr, f.kafkaAddr, f.workers, f.slots, tlsLine, logDir, tokenFile, tokenFile)
	if f.registry {
		fmt.Fprintf(g.stdout, "  schema registry:     http://%s (in memory; kafka.schema_registry.url)\n", f.registryAddr)
	}

	if f.example {
		if err := start("loadgen", "loadgen", "access-log", "--brokers", f.kafkaAddr, "--topic", "access-log",
			"--events", "0", "--rate", strconv.FormatFloat(f.rate, 'f', -1, 64), "--seed", "1"); err != nil {
			return err
		}
		data, err := spec.ExpandEnv(examples.IPVisits, func(k string) (string, bool) {
			if k == "KAFKA_BROKERS" {
				return f.kafkaAddr, true
			}
			return os.LookupEnv(k)
		})
		if err != nil {
			return err
		}
		// A coordinator that starts again on the same data directory
		// resumes the example job of the last run from its checkpoint;
		// a second copy would count every visit twice.
		id, err := resumedJob(ctx, client, "ip-visits")
		if err != nil {
			return err
		}
		if id == "" {
			if id, err = client.Submit(ctx, data); err != nil {
				return fmt.Errorf("submit the example job: %w", err)
			}
		}
		fmt.Fprintf(g.stdout, "  example job:         %s (ip-visits: access-log -> ip-visits; `weir status %s`)\n", id, id)
	}
	fmt.Fprintln(g.stdout, "Press Ctrl-C to stop.")

	// A worker that exits is started again after a backoff (a failover
	// to watch: kill one); any other child stops the cluster.
	restart := make(chan string)
	backoff := map[string]time.Duration{}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(g.stdout, "stopping")
			return nil
		case c := <-exited:
			if !strings.HasPrefix(c.name, "worker-") {
				return fmt.Errorf("%s exited unexpectedly (%v); see %s", c.name, c.err, filepath.Join(logDir, c.name+".log"))
			}
			d := nextBackoff(backoff[c.name], time.Since(c.started))
			backoff[c.name] = d
			fmt.Fprintf(g.stdout, "%s exited (%v); starting it again in %s (log %s)\n", c.name, exitText(c.err), d, filepath.Join(logDir, c.name+".log"))
			go func(name string) {
				t := time.NewTimer(d)
				defer t.Stop()
				select {
				case <-ctx.Done():
				case <-t.C:
					select {
					case restart <- name:
					case <-ctx.Done():
					}
				}
			}(c.name)
		case name := <-restart:
			mu.Lock()
			args := argsOf[name]
			mu.Unlock()
			if err := start(name, args...); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s started again\n", name)
		}
	}
}

// Worker restart backoff in weir dev: 1 s, doubling to 30 s for a worker
// that keeps dying soon after its start, back to 1 s once one ran a while.
const (
	devRestartMin    = time.Second
	devRestartMax    = 30 * time.Second
	devRestartStable = time.Minute
)

func nextBackoff(last, ran time.Duration) time.Duration {
	if last == 0 || ran >= devRestartStable {
		return devRestartMin
	}
	return min(last*2, devRestartMax)
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// nthAddr is base with its port plus n (port 0 stays 0: a free one).
func nthAddr(base string, n int) (string, error) {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", base)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("%q: port must be 0 to 65535", base)
	}
	if p == 0 {
		return base, nil
	}
	if p+n > 65535 {
		return "", fmt.Errorf("%q: worker %d would need port %d", base, n+1, p+n)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+n)), nil
}

// DevTLSFiles returns the files of weir dev's local CA and the certificate
// its processes share, under DATA-DIR/tls, making them on first use
// (tlsconf.EnsureDev): ca.crt, node.crt and node.key, for localhost,
// 127.0.0.1, ::1 and the host name. The REST API's HTTPS can serve the
// same certificate.
func DevTLSFiles(dataDir string) (tlsconf.Files, error) {
	f, err := tlsconf.EnsureDev(filepath.Join(dataDir, "tls"))
	if err != nil {
		return tlsconf.Files{}, fmt.Errorf("weir dev: local CA: %w", err)
	}
	return f, nil
}

func waitReady(ctx context.Context, exited <-chan *child, ready func() bool) error {
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-exited:
			return fmt.Errorf("%s exited during start-up (%v)", c.name, c.err)
		case <-deadline:
			return errors.New("the cluster did not come up within 30s")
		case <-tick.C:
		}
	}
	return nil
}

func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("address %s is not free (another weir dev running?): %w", addr, err)
	}
	return l.Close()
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// resumedJob returns the id of a job called name that has not ended, ""
// when there is none.
func resumedJob(ctx context.Context, client *api.Client, name string) (string, error) {
	jobs, err := client.Jobs(ctx)
	if err != nil {
		return "", fmt.Errorf("list jobs: %w", err)
	}
	for _, j := range jobs {
		switch j.State {
		case "FINISHED", "FAILED", "CANCELLED":
		default:
			if j.Name == name {
				return j.ID, nil
			}
		}
	}
	return "", nil
}
