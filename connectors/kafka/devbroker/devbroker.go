// Package devbroker runs an in-process Kafka-protocol broker (franz-go's
// kfake) for `weir dev kafka` and for tests: real wire protocol,
// transactions, read_committed and, with a data directory, persistence
// across restarts.
package devbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
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
	DataDir string
	// Partitions is the partition count of auto-created topics and of
	// Topics (default 4).
	Partitions int32
	// Topics are created at start when missing.
	Topics []string
	// BrokerConfigs are broker-level configs (kfake.BrokerConfigs).
	BrokerConfigs map[string]string
}

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
	if c.Partitions < 0 {
		return fmt.Errorf("devbroker: partitions %d: must be positive", c.Partitions)
	}
	return nil
}

// Broker is a running dev broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	once    sync.Once
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
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
		kfake.BrokerConfigs(bcfgs),
	}
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
	b := &Broker{cluster: c, addr: addrs[0]}
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		return fmt.Errorf("devbroker: create topics: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	sorted := append([]string(nil), topics...)
	sort.Strings(sorted)
	for _, t := range sorted {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = t
		rt.NumPartitions = partitions
		rt.ReplicationFactor = -1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("devbroker: create topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("devbroker: create topic %q: %w", t.Topic, err)
		}
	}
	return nil
}
