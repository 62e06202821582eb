package hdfs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the namenode RPC port used when a URI names none.
const DefaultPort = 8020

// EnvOptions names the environment variable with defaults for every
// hdfs:// URI a process opens, in query syntax
// ("io_timeout=30s&kerberos_principal=..."); a URI's own parameters win.
// It exists because a checkpoint URI travels without its query: the
// coordinator hands workers locations built by Storage.URI, which keep the
// namenodes, the user and the path but not the other options. Set it alike
// on every coordinator and worker (each host may name its own Kerberos
// principal and keytab).
const EnvOptions = "WEIR_HDFS_OPTIONS"

// Options configure an HDFS storage. ParseURI builds them from a URI;
// New takes them directly.
type Options struct {
	// Namenodes are host:port addresses, tried in order (an HA pair: the
	// client fails over to the next one when a namenode is unreachable or
	// answers StandbyException).
	Namenodes []string
	// Root is the absolute HDFS directory the storage is rooted at.
	Root string
	// User is the HDFS user to act as (simple authentication). Default:
	// $HADOOP_USER_NAME, else the OS user. Ignored with Kerberos.
	User string
	// Kerberos, when set, authenticates with a keytab instead.
	Kerberos *KerberosOptions
	// UseDatanodeHostname dials datanodes by host name rather than IP
	// (dfs.client.use.datanode.hostname), for datanodes behind NAT or in
	// containers.
	UseDatanodeHostname bool
	// DataTransferProtection is "", "authentication", "integrity" or
	// "privacy" (dfs.data.transfer.protection), for SASL on datanode
	// connections; "" follows the namenode's defaults.
	DataTransferProtection string
	// DialTimeout bounds every TCP connect (default 10s).
	DialTimeout time.Duration
	// IOTimeout bounds every read and write on a namenode or datanode
	// connection (default 60s): a hung node fails the call as unavailable
	// instead of blocking it forever.
	IOTimeout time.Duration
}

// KerberosOptions authenticate from a keytab.
type KerberosOptions struct {
	// Principal is the client principal, user[/host]@REALM.
	Principal string
	// Keytab is the path of the keytab holding the principal's key.
	Keytab string
	// Krb5Conf is the path of krb5.conf (default $KRB5_CONFIG, else
	// /etc/krb5.conf).
	Krb5Conf string
	// NamenodeSPN is the namenodes' service principal, as
	// dfs.namenode.kerberos.principal: nn/_HOST@REALM (_HOST is replaced by
	// each namenode's host name).
	NamenodeSPN string
}

var knownParams = map[string]bool{
	"user": true, "namenodes": true, "dial_timeout": true, "io_timeout": true,
	"use_datanode_hostname": true, "data_transfer_protection": true,
	"kerberos_principal": true, "keytab": true, "krb5_conf": true, "namenode_spn": true,
}

// ParseURI reads Options from an hdfs:// URI:
//
//	hdfs://namenode:8020/weir/checkpoints
//	hdfs://nn1:8020,nn2:8020/weir?user=weir                  an HA pair
//	hdfs:///weir?namenodes=nn1:8020,nn2:8020&user=weir       the same
//	hdfs://nn:8020/weir?kerberos_principal=weir/host@REALM&keytab=/etc/weir.keytab&namenode_spn=nn/_HOST@REALM
//
// Query parameters: user, namenodes, dial_timeout, io_timeout (Go
// durations), use_datanode_hostname (true/false), data_transfer_protection,
// kerberos_principal, keytab, krb5_conf, namenode_spn. An unknown parameter
// is an error, so a typo is not silently ignored.
func ParseURI(u *url.URL) (Options, error) {
	var o Options
	if !strings.EqualFold(u.Scheme, "hdfs") {
		return o, fmt.Errorf("scheme %q, want hdfs", u.Scheme)
	}
	own := u.Query()
	for k := range own {
		if !knownParams[k] {
			return o, fmt.Errorf("unknown parameter %q (known: user, namenodes, dial_timeout, io_timeout, use_datanode_hostname, data_transfer_protection, kerberos_principal, keytab, krb5_conf, namenode_spn)", k)
		}
	}
	q, err := envDefaults()
	if err != nil {
		return o, err
	}
	for k, v := range own {
		q[k] = v
	}
	if u.User != nil && own.Get("user") == "" {
		q.Del("user") // the URI's user wins over the environment's
	}
	var hosts []string
	if u.Host != "" {
		hosts = append(hosts, strings.Split(u.Host, ",")...)
	}
	if v := q.Get("namenodes"); v != "" {
		if u.Host != "" {
			return o, errors.New("namenodes given twice: in the host part and in the namenodes parameter (use one)")
		}
		hosts = strings.Split(v, ",")
	}
	if len(hosts) == 0 {
		return o, errors.New("no namenode: want hdfs://namenode:8020/path, hdfs://nn1:8020,nn2:8020/path or ?namenodes=nn1:8020,nn2:8020")
	}
	for _, h := range hosts {
		addr, err := withPort(strings.TrimSpace(h))
		if err != nil {
			return o, err
		}
		o.Namenodes = append(o.Namenodes, addr)
	}
	o.Root = u.Path
	o.User = q.Get("user")
	if u.User != nil {
		if o.User != "" && o.User != u.User.Username() {
			return o, fmt.Errorf("user given twice: %q in the URI and %q in the user parameter", u.User.Username(), o.User)
		}
		if _, hasPass := u.User.Password(); hasPass {
			return o, errors.New("a password in the URI is not supported (HDFS uses simple auth or Kerberos)")
		}
		o.User = u.User.Username()
	}
	if o.DialTimeout, err = duration(q, "dial_timeout"); err != nil {
		return o, err
	}
	if o.IOTimeout, err = duration(q, "io_timeout"); err != nil {
		return o, err
	}
	if v := q.Get("use_datanode_hostname"); v != "" {
		if o.UseDatanodeHostname, err = strconv.ParseBool(v); err != nil {
			return o, fmt.Errorf("use_datanode_hostname=%q: want true or false", v)
		}
	}
	o.DataTransferProtection = q.Get("data_transfer_protection")
	if p := q.Get("kerberos_principal"); p != "" || q.Get("keytab") != "" {
		o.Kerberos = &KerberosOptions{Principal: p, Keytab: q.Get("keytab"), Krb5Conf: q.Get("krb5_conf"),
			NamenodeSPN: q.Get("namenode_spn")}
	} else if q.Get("krb5_conf") != "" || q.Get("namenode_spn") != "" {
		return o, errors.New("krb5_conf and namenode_spn need kerberos_principal and keytab")
	}
	return o, o.Validate()
}

func envDefaults() (url.Values, error) {
	env := os.Getenv(EnvOptions)
	q, err := url.ParseQuery(env)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", EnvOptions, env, err)
	}
	for k := range q {
		if !knownParams[k] || k == "namenodes" {
			return nil, fmt.Errorf("%s: unknown parameter %q (namenodes belong in the URI)", EnvOptions, k)
		}
	}
	return q, nil
}

func withPort(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty namenode address")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: the default one.
		if strings.Contains(err.Error(), "missing port") {
			return net.JoinHostPort(strings.Trim(h, "[]"), strconv.Itoa(DefaultPort)), nil
		}
		return "", fmt.Errorf("namenode address %q: %w", h, err)
	}
	if host == "" {
		return "", fmt.Errorf("namenode address %q: no host", h)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("namenode address %q: bad port", h)
	}
	return h, nil
}

func duration(q url.Values, k string) (time.Duration, error) {
	v := q.Get(k)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration like 30s", k, v)
	}
	return d, nil
}

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	if len(o.Namenodes) == 0 {
		return errors.New("no namenode address")
	}
	for i, n := range o.Namenodes {
		addr, err := withPort(n)
		if err != nil {
			return err
		}
		o.Namenodes[i] = addr
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if !strings.HasPrefix(o.Root, "/") {
		return fmt.Errorf("root %q: want an absolute path", o.Root)
	}
	for _, e := range strings.Split(o.Root, "/") {
		if e == "." || e == ".." {
			return fmt.Errorf("root %q: no . or .. components", o.Root)
		}
	}
	o.Root = path.Clean(o.Root)
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = 60 * time.Second
	}
	switch o.DataTransferProtection {
	case "", "authentication", "integrity", "privacy":
	default:
		return fmt.Errorf("data_transfer_protection %q: want authentication, integrity or privacy", o.DataTransferProtection)
	}
	if k := o.Kerberos; k != nil {
		if k.Principal == "" || k.Keytab == "" {
			return errors.New("kerberos needs both kerberos_principal and keytab")
		}
		if !strings.Contains(k.Principal, "@") {
			return fmt.Errorf("kerberos_principal %q: want user[/host]@REALM", k.Principal)
		}
		if k.NamenodeSPN == "" {
			return errors.New("kerberos needs namenode_spn (dfs.namenode.kerberos.principal, e.g. nn/_HOST@REALM)")
		}
		if k.Krb5Conf == "" {
			k.Krb5Conf = os.Getenv("KRB5_CONFIG")
		}
		if k.Krb5Conf == "" {
			k.Krb5Conf = "/etc/krb5.conf"
		}
		return nil
	}
	if o.User == "" {
		o.User = os.Getenv("HADOOP_USER_NAME")
	}
	if o.User == "" {
		u, err := user.Current()
		if err != nil || u.Username == "" {
			return fmt.Errorf("no HDFS user: set ?user=NAME or HADOOP_USER_NAME (%v)", err)
		}
		o.User = u.Username
	}
	return nil
}
