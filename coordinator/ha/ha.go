// Package ha lets several coordinators share one cluster through etcd: they
// elect one leader (etcd's concurrency.Election on a lease), and the leader
// proves it still leads before every step that two coordinators must never
// both take.
//
// # Fencing
//
// A leader's claim is its election key, created under its session lease
// at revision R. The key exists exactly while the lease lives; once the
// lease expires (the leader died, hung, or lost its connection to etcd for
// longer than the TTL) etcd deletes the key and the next candidate's key
// becomes the oldest, making that candidate the leader.
//
// Every fenced step is an etcd transaction that succeeds only if the
// leader's own key still exists with create revision R:
//
//   - triggering checkpoint n records n as the job's highest checkpoint id
//     (so ids are never reused, also across leaders);
//   - before a checkpoint's _metadata is committed (renamed into place) the
//     leader proves it leads, and afterwards records the checkpoint as the
//     job's latest completed one;
//   - before "checkpoint n complete" is sent (which makes Kafka sinks
//     commit), the leader proves it leads;
//   - every job store write (submit, cancel, end).
//
// A deposed leader therefore cannot start, complete or notify a
// checkpoint: its transaction either cannot reach etcd (partitioned) or
// fails the comparison (its key is gone). Independently, a leader whose
// session ends stops at once (Lost is closed and `weir coordinator`
// exits). What remains is the time between a successful fenced
// transaction and the step itself (microseconds to a network round trip
// to a worker); a sink commit that races a new leader's takeover is still
// safe, because the new leader's sinks re-initialise their transactional
// ids, which fences the old producers at the broker (docs/exactly-once.md).
//
// Keys, under a prefix (default /weir):
//
//	<prefix>/leader/<lease>          election; value: the leader's Info as JSON
//	<prefix>/jobs/<job-id>           the job store record (small JSON; the spec
//	                                 itself stays in checkpoint storage)
//	<prefix>/checkpoints/<job-id>/last-id     highest checkpoint id triggered
//	<prefix>/checkpoints/<job-id>/latest      latest completed checkpoint's URI
//
// No value grows with the job: the spec, checkpoint metadata, history and
// state are in checkpoint storage (docs/ha.md has the sizing).
package ha

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// ErrNotLeader: a fenced step was refused because this coordinator no
// longer leads.
var ErrNotLeader = errors.New("ha: this coordinator is no longer the leader")

// Info describes a coordinator, as published in the election.
type Info struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	GRPCAddr string `json:"grpc_addr"`
}

// Config configures Connect.
type Config struct {
	// Endpoints of the etcd cluster, host:port.
	Endpoints []string
	// Prefix of every key (default /weir).
	Prefix string
	// TTL of the leader's lease (default 5s; whole seconds). A dead
	// leader is replaced within about this long.
	TTL time.Duration
	// DialTimeout bounds connecting to etcd (default 5s).
	DialTimeout time.Duration
	// OpTimeout bounds one fenced transaction (default 5s).
	OpTimeout time.Duration
	Logger    *slog.Logger
	// TLS, when set, is the client side of etcd's TLS: the CA etcd's
	// certificate must chain to and, for etcd's --client-cert-auth, the
	// certificate to present (tlsconf.Source.ClientConfig). nil: plaintext.
	TLS *tls.Config
	// Username and Password authenticate to etcd when its auth is on
	// (the user needs read and write on Prefix). Empty: no user.
	Username, Password string
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "/weir"
	}
	c.Prefix = strings.TrimRight(c.Prefix, "/")
	if c.TTL <= 0 {
		c.TTL = 5 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Client is a connection to etcd for one coordinator.
type Client struct {
	cfg Config
	cli *clientv3.Client
}

// Connect dials etcd and checks it answers.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	cfg.setDefaults()
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("ha: no etcd endpoints")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, Logger: nopZap(),
		TLS: cfg.TLS, Username: cfg.Username, Password: cfg.Password})
	if err != nil {
		return nil, fmt.Errorf("ha: etcd %s: %w%s", strings.Join(cfg.Endpoints, ","), err, connectHint(err))
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(cctx, cfg.Prefix+"/leader", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, fmt.Errorf("ha: etcd %s does not answer: %w%s", strings.Join(cfg.Endpoints, ","), err, connectHint(err))
	}
	return &Client{cfg: cfg, cli: cli}, nil
}

// connectHint says what usually lies behind an etcd client's terse
// errors: gRPC retries a failed TLS handshake until the deadline, so a
// certificate etcd refuses shows only as a timeout.
func connectHint(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return " (is etcd running there, and do its TLS and the coordinator's --etcd-cert, --etcd-key and --etcd-ca match?)"
	case strings.Contains(err.Error(), "permission denied"), strings.Contains(err.Error(), "user name is empty"):
		return " (etcd has authentication on: give --etcd-user and --etcd-password-file of a user that may read and write the prefix)"
	}
	return ""
}

// Close closes the connection.
func (c *Client) Close() error { return c.cli.Close() }

// Etcd is the underlying client.
func (c *Client) Etcd() *clientv3.Client { return c.cli }

func (c *Client) electionPrefix() string { return c.cfg.Prefix + "/leader" }

// CurrentLeader returns the leader's Info; ok is false when there is none.
func (c *Client) CurrentLeader(ctx context.Context) (Info, bool, error) {
	resp, err := c.cli.Get(ctx, c.electionPrefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return Info{}, false, fmt.Errorf("ha: who leads: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Info{}, false, nil
	}
	var in Info
	if err := json.Unmarshal(resp.Kvs[0].Value, &in); err != nil {
		return Info{}, false, fmt.Errorf("ha: leader key %s holds %q: %w", resp.Kvs[0].Key, resp.Kvs[0].Value, err)
	}
	return in, true, nil
}

// Leader is this coordinator while it leads.
type Leader struct {
	c    *Client
	sess *concurrency.Session
	key  string
	rev  int64
	info Info

	lostOnce sync.Once
	lost     chan struct{}

	// lastIDs caches, per job, the checkpoint id this leader last
	// recorded, so a trigger is one fenced transaction (compare with the
	// cached id, put the new one) instead of a read and a transaction. A
	// failed comparison reads the id again.
	idMu    sync.Mutex
	lastIDs map[string]int64
}

// Campaign blocks until this coordinator leads (or ctx ends), then
// returns its Leader. Its lease is kept alive in the background; when it
// cannot be (etcd unreachable longer than the TTL) Lost is closed.
func (c *Client) Campaign(ctx context.Context, info Info) (*Leader, error) {
	sess, err := concurrency.NewSession(c.cli, concurrency.WithTTL(int(max(1, c.cfg.TTL/time.Second))))
	if err != nil {
		return nil, fmt.Errorf("ha: etcd session: %w", err)
	}
	val, err := json.Marshal(info)
	if err != nil {
		sess.Close()
		return nil, err
	}
	e := concurrency.NewElection(sess, c.electionPrefix())
	if err := e.Campaign(ctx, string(val)); err != nil {
		sess.Close()
		return nil, fmt.Errorf("ha: campaign: %w", err)
	}
	l := &Leader{c: c, sess: sess, key: e.Key(), rev: e.Rev(), info: info, lost: make(chan struct{})}
	go func() {
		<-sess.Done()
		l.markLost()
	}()
	c.cfg.Logger.Info("leading", "key", l.key, "revision", l.rev)
	return l, nil
}

func (l *Leader) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// Lost is closed when this coordinator can no longer be sure it leads.
func (l *Leader) Lost() <-chan struct{} { return l.lost }

// Token is the fencing token: the create revision of the leader's key.
// Leaders elected later have larger tokens.
func (l *Leader) Token() int64 { return l.rev }

// Resign gives up leadership (on a clean stop), so a standby takes over
// without waiting for the lease to expire.
func (l *Leader) Resign(ctx context.Context) error {
	defer l.markLost()
	_, err := l.c.cli.Delete(ctx, l.key)
	if cerr := l.sess.Close(); err == nil {
		err = cerr
	}
	return err
}

// Txn runs ops if and only if this coordinator still leads, with extra
// comparisons cmps. A refused leadership check returns ErrNotLeader (and
// Lost is closed); a refused cmp returns errCompare.
func (l *Leader) Txn(ctx context.Context, cmps []clientv3.Cmp, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	select {
	case <-l.lost:
		return nil, ErrNotLeader
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, l.c.cfg.OpTimeout)
	defer cancel()
	lead := clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)
	resp, err := l.c.cli.Txn(ctx).If(append([]clientv3.Cmp{lead}, cmps...)...).Then(ops...).
		Else(clientv3.OpGet(l.key)).Commit()
	if err != nil {
		return nil, fmt.Errorf("ha: fenced etcd transaction: %w", err)
	}
	if resp.Succeeded {
		return resp, nil
	}
	if len(resp.Responses) > 0 && len(resp.Responses[0].GetResponseRange().Kvs) > 0 &&
		resp.Responses[0].GetResponseRange().Kvs[0].CreateRevision == l.rev {
		return resp, errCompare
	}
	l.markLost()
	return nil, ErrNotLeader
}

var errCompare = errors.New("ha: comparison failed")

// Guard proves this coordinator leads right now.
func (l *Leader) Guard(ctx context.Context) error {
	_, err := l.Txn(ctx, nil)
	return err
}

func (l *Leader) checkpointKey(job, name string) string {
	return l.c.cfg.Prefix + "/checkpoints/" + job + "/" + name
}

// Trigger records n as used for job, fenced. Ids only grow: recording an
// id at or below the recorded one fails.
func (l *Leader) Trigger(ctx context.Context, job string, n int64) error {
	select {
	case <-l.lost:
		return ErrNotLeader
	default:
	}
	key := l.checkpointKey(job, "last-id")
	l.idMu.Lock()
	defer l.idMu.Unlock()
	last, cached := l.lastIDs[job]
	for attempt := 0; ; attempt++ {
		if !cached {
			var err error
			if last, err = l.LastID(ctx, job); err != nil {
				return err
			}
		}
		if n <= last {
			return fmt.Errorf("ha: checkpoint id %d of job %s is not above the recorded %d", n, job, last)
		}
		var cmp clientv3.Cmp
		if last == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		} else {
			cmp = clientv3.Compare(clientv3.Value(key), "=", strconv.FormatInt(last, 10))
		}
		_, err := l.Txn(ctx, []clientv3.Cmp{cmp}, clientv3.OpPut(key, strconv.FormatInt(n, 10)))
		switch {
		case err == nil:
			if l.lastIDs == nil {
				l.lastIDs = map[string]int64{}
			}
			l.lastIDs[job] = n
			return nil
		case errors.Is(err, errCompare) && cached && attempt == 0:
			cached = false // the cache was stale: read the id and try once more
		case errors.Is(err, errCompare):
			delete(l.lastIDs, job)
			return fmt.Errorf("ha: checkpoint id of job %s changed concurrently", job)
		default:
			delete(l.lastIDs, job)
			return err
		}
	}
}

// LastID is the highest checkpoint id recorded for job (0: none).
func (l *Leader) LastID(ctx context.Context, job string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.c.cfg.OpTimeout)
	defer cancel()
	resp, err := l.c.cli.Get(ctx, l.checkpointKey(job, "last-id"))
	if err != nil {
		return 0, fmt.Errorf("ha: checkpoint id of job %s: %w", job, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ha: checkpoint id of job %s is %q: %w", job, resp.Kvs[0].Value, err)
	}
	return n, nil
}

// Completed records checkpoint n at uri as job's latest completed one.
func (l *Leader) Completed(ctx context.Context, job string, n int64, uri string) error {
	_, err := l.Txn(ctx, nil, clientv3.OpPut(l.checkpointKey(job, "latest"), strconv.FormatInt(n, 10)+" "+uri))
	return err
}

// Forget deletes what etcd holds of a job's checkpoints.
func (l *Leader) Forget(ctx context.Context, job string) error {
	_, err := l.Txn(ctx, nil, clientv3.OpDelete(l.c.cfg.Prefix+"/checkpoints/"+job+"/", clientv3.WithPrefix()))
	return err
}

func nopZap() *zap.Logger { return zap.NewNop() }
