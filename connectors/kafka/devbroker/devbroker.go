// Package devbroker runs an in-process Kafka-protocol broker (franz-go's
// kfake) for `weir dev kafka` and for tests: real wire protocol,
// transactions, read_committed and, with a data directory, persistence
// across restarts.
package devbroker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultPartitions is the partition count of auto-created topics.
const DefaultPartitions int32 = 4

// DefaultTxnMaxTimeoutMs is the broker's transaction.max.timeout.ms unless
// BrokerConfigs overrides it: 15 minutes, like Apache Kafka, so that an
// exactly-once sink's transactions survive checkpoint interval + timeout +
// restart.
const DefaultTxnMaxTimeoutMs = "900000"

// Config configures a dev broker.
type Config struct {
	// Addr is host:port to listen on; port 0 picks a free one. Default
	// 127.0.0.1:9092. The host is what clients are told to connect to, so
	// it must be an address they can reach (not 0.0.0.0).
	Addr string
	// DataDir persists topics, offsets and transactions when set; a broker
	// started on the same directory resumes where the last one stopped.
	// Transactions a crash left open are aborted at start, with abort
	// markers written before clients connect (abortCrashedTxns).
	DataDir string
	// Partitions is the partition count of auto-created topics and of
	// Topics (default 4).
	Partitions int32
	// Topics are created at start when missing.
	Topics []string
	// BrokerConfigs are broker-level configs (kfake.BrokerConfigs).
	BrokerConfigs map[string]string
	// Logger receives warnings about the data directory (default
	// slog.Default()).
	Logger *slog.Logger

	// TLSCert and TLSKey (PEM files), when set, make the broker take only
	// TLS connections (1.2+), presenting this certificate. TLSClientCA,
	// when set too, makes it require a client certificate one of its
	// certificates signed (mutual TLS).
	TLSCert, TLSKey, TLSClientCA string
	// SASLUser, when set, makes every client log in with SASL as this
	// user and SASLPassword, by PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (a
	// connection that does not is refused). The user may do everything
	// (a kfake superuser: no ACLs).
	SASLUser, SASLPassword string
}

// SASLMechanisms are the mechanisms SASLUser may log in with.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// Validate fills in defaults and checks the config.
func (c *Config) Validate() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9092"
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("devbroker: addr %q: want host:port: %w", c.Addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("devbroker: addr %q: bad port", c.Addr)
	}
	if host == "0.0.0.0" || host == "::" {
		return fmt.Errorf("devbroker: addr %q: the host is advertised to clients; use a reachable address, not a wildcard", c.Addr)
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Partitions < 0 {
		return fmt.Errorf("devbroker: partitions %d: must be positive", c.Partitions)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("devbroker: a TLS certificate and its key go together")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return errors.New("devbroker: a client CA needs TLS (a certificate and key)")
	}
	if (c.SASLUser == "") != (c.SASLPassword == "") {
		return errors.New("devbroker: a SASL user and its password go together")
	}
	return nil
}

// securityOpts are the kfake options for the TLS and SASL the config asks
// for. Only the listening broker gets them: the broker's own short-lived
// clients (abortCrashedTxns) talk to a private plaintext instance.
func (c *Config) securityOpts() ([]kfake.Opt, error) {
	var opts []kfake.Opt
	if c.TLSCert != "" {
		pair, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("devbroker: TLS certificate %s, key %s: %v", c.TLSCert, c.TLSKey, err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		if c.TLSClientCA != "" {
			pem, err := os.ReadFile(c.TLSClientCA)
			if err != nil {
				return nil, fmt.Errorf("devbroker: client CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("devbroker: client CA %s: no PEM certificate in it", c.TLSClientCA)
			}
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		opts = append(opts, kfake.TLS(tc))
	}
	if c.SASLUser != "" {
		opts = append(opts, kfake.EnableSASL())
		for _, m := range SASLMechanisms {
			opts = append(opts, kfake.Superuser(m, c.SASLUser, c.SASLPassword))
		}
	}
	return opts, nil
}

// Broker is a running dev broker.
type Broker struct {
	cluster    *kfake.Cluster
	addr       string
	partitions int32
	once       sync.Once
}

// autoCreate is a kfake control for Metadata requests: it creates the
// missing topics a request asks to auto-create, as Kafka's
// auto.create.topics.enable does, through Cluster.CreateTopic, which writes
// the topic to the data directory before the answer goes out. It never
// answers the request itself (handled false), so kfake's Metadata handler
// answers with the topics now present; a name CreateTopic refuses is
// answered UNKNOWN_TOPIC_OR_PARTITION. kfake runs controls on their own
// goroutine while its loop serves CreateTopic, so calling it here is safe.
func (b *Broker) autoCreate(req kmsg.Request) (kmsg.Response, error, bool) { //nolint:revive // kfake's control signature
	b.cluster.KeepControl()
	m, ok := req.(*kmsg.MetadataRequest)
	if !ok || !m.AllowAutoTopicCreation {
		return nil, nil, false
	}
	for _, t := range m.Topics {
		if t.Topic == nil || t.TopicID != [16]byte{} {
			continue
		}
		if b.cluster.TopicInfo(*t.Topic) != nil {
			continue
		}
		// A concurrent request may have created it first: TopicAlreadyExists
		// is as good as success.
		_ = b.cluster.CreateTopic(*t.Topic, b.partitions, nil)
	}
	return nil, nil, false
}

// Start starts a broker and returns once it accepts connections; it does not
// block while the broker runs. Close it when done.
func Start(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, _ := strconv.Atoi(portStr)

	bcfgs := map[string]string{"transaction.max.timeout.ms": DefaultTxnMaxTimeoutMs}
	for k, v := range cfg.BrokerConfigs {
		bcfgs[k] = v
	}
	if cfg.DataDir != "" {
		if err := setAsideOrphans(cfg.DataDir, cfg.Logger); err != nil {
			return nil, err
		}
	}
	// No kfake.AllowAutoTopicCreation: kfake's own auto-create (a Metadata
	// request naming a missing topic) keeps the topic in memory only, never
	// in its topics file, so after a crash the broker forgets the topic and
	// its data (and a topic auto-created again under the same name appends
	// to the old partition files at the wrong positions). autoCreate creates
	// such topics through the CreateTopics path instead, which persists them.
	opts := []kfake.Opt{
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
		kfake.BrokerConfigs(bcfgs),
	}
	if cfg.DataDir != "" {
		if err := abortCrashedTxns(cfg.DataDir, opts, cfg.Logger); err != nil {
			return nil, err
		}
	}
	sec, err := cfg.securityOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts, sec...)
	opts = append(opts, kfake.Ports(port))
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(cfg.Partitions, cfg.Topics...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if host != "127.0.0.1" && host != "" {
		// kfake binds 127.0.0.1; bind the requested host instead so the
		// advertised address is the one the user asked for.
		opts = append(opts, kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("devbroker: start on %s: %w", cfg.Addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, errors.New("devbroker: broker has no listener")
	}
	b := &Broker{cluster: c, addr: addrs[0], partitions: cfg.Partitions}
	c.ControlKey(int16(kmsg.Metadata), b.autoCreate)
	// Seed topics apply only to a fresh data directory; create topics added
	// to the config since then.
	if cfg.DataDir != "" && len(cfg.Topics) > 0 {
		if err := b.createTopics(cfg.Topics, cfg.Partitions); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Addr returns the host:port clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Cluster returns the underlying kfake cluster, for tests that inject faults.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker, persisting its state when it has a data
// directory. It is idempotent.
func (b *Broker) Close() {
	b.once.Do(b.cluster.Close)
}

func (b *Broker) createTopics(topics []string, partitions int32) error {
	// In process rather than over the wire: the listener may want TLS and
	// SASL, and CreateTopic persists the topic like a request would.
	sorted := append([]string(nil), topics...)
	sort.Strings(sorted)
	for _, t := range sorted {
		if err := b.cluster.CreateTopic(t, partitions, nil); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("devbroker: create topic %q: %w", t, err)
		}
	}
	return nil
}
