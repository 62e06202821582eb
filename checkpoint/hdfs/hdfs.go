// Package hdfs is checkpoint storage on HDFS (hdfs://namenode:8020/path),
// through the github.com/colinmarc/hdfs/v2 client. Importing it registers
// the hdfs scheme with checkpoint.OpenStorage:
//
//	import _ "github.com/weir-stream/weir/checkpoint/hdfs"
//
// URI forms and options are in ParseURI and docs/hdfs.md. How the
// checkpoint.Storage contract maps onto HDFS, and why:
//
//   - Create makes the parent directories, then creates the file without
//     overwrite (FileAlreadyExists is ErrExists). Data streams to the
//     datanode in 64 KiB packets as it is written; nothing buffers a whole
//     file. Close finishes the last block and calls complete: only then is
//     the file complete. A writer that fails (datanode gone, context
//     cancelled) deletes the file before releasing the block stream, so the
//     namenode never completes a partial file.
//   - Rename is HDFS rename, atomic on the namenode: readers see the old
//     name or the new one. The client library only sends rename2 with
//     overwrite, so ErrExists comes from a check just before; the commit of
//     _metadata has one writer (the fenced leader coordinator), for which
//     check-then-rename never replaces a checkpoint.
//   - List and Stat are getListing and getFileInfo; DeleteAll is a
//     recursive delete, and deleting what is missing is not an error.
//   - Errors: FileNotFound is ErrNotFound, AccessControlException is
//     ErrPermission, FileAlreadyExists and AlreadyBeingCreated are ErrExists;
//     an unreachable or hung namenode (and every other failure) is
//     ErrUnavailable, with the namenode addresses in the message.
//   - URI names the user (hdfs://user@namenodes/path) and drops the query:
//     a worker that opens a location the coordinator handed it acts as the
//     same HDFS user; the other options come from EnvOptions.
//   - The client is created on first use and re-created after its namenode
//     connection breaks, so a namenode that restarts (or an HA failover) is
//     picked up by the next call without reopening the storage; calls in
//     flight when it broke fail with ErrUnavailable.
//   - Every read and write on a connection has a deadline (IOTimeout, or
//     the context's deadline when sooner); a context is checked before
//     every call and every Read/Write, since the client library takes no
//     context.
package hdfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gohdfs "github.com/colinmarc/hdfs/v2"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/weir-stream/weir/checkpoint"
)

func init() { checkpoint.Register("hdfs", Open) }

// Open opens the storage an hdfs:// URI names (see ParseURI). It does not
// connect: the namenode is dialled on first use, so a worker can start
// while HDFS is down.
func Open(u *url.URL) (checkpoint.Storage, error) {
	o, err := ParseURI(u)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %s: %w", u.Redacted(), err)
	}
	return New(o)
}

// Storage is checkpoint.Storage on HDFS. Safe for concurrent use.
type Storage struct {
	opts Options
	base string // hdfs://authority, for URIs

	mu     sync.Mutex
	cur    *conn
	closed bool
}

var _ checkpoint.Storage = (*Storage)(nil)

// conn is one client (one namenode connection) and its users. It is closed
// when it is stale (broken, replaced or the storage closed) and no reader,
// writer or call holds it.
type conn struct {
	c      *gohdfs.Client
	refs   int
	stale  bool
	done   bool
	broken atomic.Bool // a read or write on a namenode connection failed
}

// New opens a storage with the given options.
func New(o Options) (*Storage, error) {
	o.Namenodes = append([]string(nil), o.Namenodes...) // Validate normalizes in place
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint storage hdfs: %w", err)
	}
	// URIs name the user, so that whoever opens one (a worker restoring
	// from a location the coordinator handed it) acts as the same user and
	// finds the same permissions. With Kerberos each process authenticates
	// as its own principal (EnvOptions).
	base := "hdfs://"
	if o.Kerberos == nil && o.User != "" {
		base += url.User(o.User).String() + "@"
	}
	return &Storage{opts: o, base: base + strings.Join(o.Namenodes, ",")}, nil
}

func (s *Storage) user() string {
	if s.opts.Kerberos != nil {
		return s.opts.Kerberos.Principal
	}
	return s.opts.User
}

func (s *Storage) namenodes() string { return strings.Join(s.opts.Namenodes, ",") }

func (s *Storage) dial() (*conn, error) {
	cn := &conn{}
	d := &net.Dialer{Timeout: s.opts.DialTimeout}
	copts := gohdfs.ClientOptions{
		Addresses:              s.opts.Namenodes,
		User:                   s.opts.User,
		UseDatanodeHostname:    s.opts.UseDatanodeHostname,
		DataTransferProtection: s.opts.DataTransferProtection,
		NamenodeDialFunc: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				cn.broken.Store(true)
				return nil, err
			}
			// Connected (again): an earlier failure, such as the first of an
			// HA pair being down, is over.
			cn.broken.Store(false)
			return &deadlineConn{Conn: c, timeout: s.opts.IOTimeout, broken: &cn.broken}, nil
		},
		DatanodeDialFunc: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &datanodeConn{Conn: c}, nil
		},
	}
	if k := s.opts.Kerberos; k != nil {
		kc, err := kerberosClient(k)
		if err != nil {
			return nil, err
		}
		copts.KerberosClient = kc
		copts.KerberosServicePrincipleName = strings.Split(k.NamenodeSPN, "@")[0]
	}
	c, err := gohdfs.NewClient(copts)
	if err != nil {
		return nil, err
	}
	cn.c = c
	// Fetch the server defaults now, before the client is shared: the
	// library caches them in an unguarded field on first use.
	if _, err := c.ServerDefaults(); err != nil {
		c.Close()
		return nil, err
	}
	return cn, nil
}

func kerberosClient(k *KerberosOptions) (*krbclient.Client, error) {
	name, realm, _ := strings.Cut(k.Principal, "@")
	kt, err := keytab.Load(k.Keytab)
	if err != nil {
		return nil, fmt.Errorf("kerberos keytab %s: %w", k.Keytab, err)
	}
	cfg, err := krbconfig.Load(k.Krb5Conf)
	if err != nil {
		return nil, fmt.Errorf("kerberos config %s: %w", k.Krb5Conf, err)
	}
	kc := krbclient.NewWithKeytab(name, realm, kt, cfg)
	if err := kc.Login(); err != nil {
		return nil, fmt.Errorf("kerberos login as %s: %w", k.Principal, err)
	}
	return kc, nil
}

// deadlineConn puts a deadline on every read and write of a namenode
// connection (the client library sets none) and records a failure, which
// makes the storage replace the client.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	broken  *atomic.Bool
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Read(b)
	if err != nil {
		c.broken.Store(true)
	}
	return n, err
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(b)
	if err != nil {
		c.broken.Store(true)
	}
	return n, err
}

// datanodeConn works around a goroutine leak in the client library: when
// writing a packet fails, its block stream returns before closing the
// channel its ack reader drains, and that goroutine never exits. Here a
// failed write closes the connection and reports success; the ack reader
// then fails to read (every read after the failure returns it), which is
// how the library learns of the failure and reports it from Write or
// Close, having shut its goroutines down. Reads fail as usual.
type datanodeConn struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (c *datanodeConn) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *datanodeConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.Conn.Close()
}

func (c *datanodeConn) Write(b []byte) (int, error) {
	if c.failed() != nil {
		return len(b), nil
	}
	if _, err := c.Conn.Write(b); err != nil {
		c.fail(fmt.Errorf("write to datanode %s: %w", c.RemoteAddr(), err))
	}
	return len(b), nil
}

func (c *datanodeConn) Read(b []byte) (int, error) {
	if err := c.failed(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if err != nil && err != io.EOF {
		c.fail(fmt.Errorf("read from datanode %s: %w", c.RemoteAddr(), err))
	}
	return n, err
}

// acquire returns the current client, dialling one if there is none. The
// caller releases it.
func (s *Storage) acquire(op, p string) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s %s: %w (storage closed)", op, s.URI(p), checkpoint.ErrUnavailable)
	}
	if s.cur == nil {
		c, err := s.dial()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w (namenode %s: %v)", op, s.URI(p), checkpoint.ErrUnavailable, s.namenodes(), err)
		}
		s.cur = c
	}
	s.cur.refs++
	return s.cur, nil
}

func (s *Storage) release(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.refs--
	s.closeIfUnused(c)
}

// invalidate makes the next call dial a new client.
func (s *Storage) invalidate(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == c {
		s.cur = nil
	}
	c.stale = true
	s.closeIfUnused(c)
}

// closeIfUnused closes a stale client nobody holds. Called with s.mu held.
func (s *Storage) closeIfUnused(c *conn) {
	if c.stale && c.refs <= 0 && !c.done {
		c.done = true
		_ = c.c.Close()
	}
}

// Close releases the connection; readers and writers still open keep
// theirs until they are closed. Idempotent.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if c := s.cur; c != nil {
		s.cur = nil
		c.stale = true
		s.closeIfUnused(c)
	}
	return nil
}

// URI returns hdfs://user@namenodes/root/path. OpenStorage opens it with
// the same namenodes and user; other options come from EnvOptions.
func (s *Storage) URI(p string) string {
	rel, err := cleanRel(p)
	if err != nil {
		return s.base + strings.TrimRight(s.opts.Root, "/") + "/" + p
	}
	return s.base + path.Join(s.opts.Root, rel)
}

// cleanRel turns a storage path into a clean relative slash path ("" is the
// root), refusing one that leaves the root.
func cleanRel(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", errors.New("path contains a NUL byte")
	}
	var parts []string
	for _, e := range strings.Split(p, "/") {
		switch e {
		case "", ".":
		case "..":
			return "", errors.New("path escapes the storage root")
		default:
			if strings.ContainsRune(e, ':') {
				return "", errors.New("HDFS path names cannot contain ':'")
			}
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, "/"), nil
}

// resolve checks the storage, the context and the path, and returns the
// absolute HDFS path.
func (s *Storage) resolve(ctx context.Context, op, p string) (string, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return "", fmt.Errorf("%s %s: %w (storage closed)", op, s.URI(p), checkpoint.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s %s: %w", op, s.URI(p), err)
	}
	rel, err := cleanRel(p)
	if err != nil {
		return "", fmt.Errorf("%s %q under %s: %w (%v)", op, p, s.URI(""), checkpoint.ErrPermission, err)
	}
	return path.Join(s.opts.Root, rel), nil
}

// Exception classes of remote errors that mean something to the caller
// beyond what the client library interprets itself.
const (
	excParentNotDirectory = "org.apache.hadoop.fs.ParentNotDirectoryException"
	excAlreadyExists      = "org.apache.hadoop.fs.FileAlreadyExistsException"
)

// mapErr wraps a client error with the operation, the URI and its kind,
// and replaces the client when its namenode connection broke.
func (s *Storage) mapErr(c *conn, op, p string, err error) error {
	if err == nil {
		return nil
	}
	nnDown := c != nil && c.broken.Load() || strings.Contains(err.Error(), "no available namenodes")
	if c != nil && nnDown {
		s.invalidate(c)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, s.URI(p), err)
	}
	cause := err
	var pe *os.PathError
	if errors.As(err, &pe) {
		cause = pe.Err
	}
	var remote gohdfs.Error
	isRemote := errors.As(err, &remote)
	var kind error
	switch {
	case errors.Is(cause, os.ErrNotExist):
		kind = checkpoint.ErrNotFound
	case errors.Is(cause, os.ErrExist), errors.Is(cause, syscall.ENOTEMPTY):
		kind = checkpoint.ErrExists
	case errors.Is(cause, os.ErrPermission):
		kind = checkpoint.ErrPermission
	case isRemote && remote.Exception() == excParentNotDirectory:
		kind = checkpoint.ErrNotFound
	case isRemote && remote.Exception() == excAlreadyExists:
		kind = checkpoint.ErrExists
	default:
		kind = checkpoint.ErrUnavailable
	}
	detail := cause.Error()
	if kind == checkpoint.ErrPermission && !isRemote {
		// The library keeps only the kind of an AccessControlException.
		detail = fmt.Sprintf("AccessControlException: HDFS user %q may not do this", s.user())
	}
	if isRemote {
		msg, _, _ := strings.Cut(remote.Message(), "\n") // drop a Java stack trace
		detail = fmt.Sprintf("%s: %s", remote.Exception(), msg)
	}
	switch {
	case !nnDown && !isRemote && kind == checkpoint.ErrUnavailable && (op == "write" || op == "close" || op == "read"):
		// Not the namenode: the block stream to or from the datanode.
		detail = "datanode block transfer failed: " + detail
	case nnDown && strings.Contains(detail, "StandbyException"):
		detail = fmt.Sprintf("no active namenode among %s (standby): %s", s.namenodes(), detail)
	case nnDown:
		detail = fmt.Sprintf("namenode %s unreachable: %s", s.namenodes(), detail)
	}
	return fmt.Errorf("%s %s: %w (%s)", op, s.URI(p), kind, detail)
}

func (s *Storage) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(s.opts.IOTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// Create opens a new file for writing.
func (s *Storage) Create(ctx context.Context, p string) (io.WriteCloser, error) {
	full, err := s.resolve(ctx, "create", p)
	if err != nil {
		return nil, err
	}
	if full == s.opts.Root {
		return nil, fmt.Errorf("create %s: %w (the storage root is a directory)", s.URI(p), checkpoint.ErrExists)
	}
	c, err := s.acquire("create", p)
	if err != nil {
		return nil, err
	}
	if err := c.c.MkdirAll(path.Dir(full), 0o755); err != nil {
		s.release(c)
		return nil, s.mapErr(c, "create", p, err)
	}
	fw, err := c.c.Create(full)
	if err != nil {
		s.release(c)
		return nil, s.mapErr(c, "create", p, err)
	}
	return &writer{ctx: ctx, s: s, c: c, p: p, full: full, fw: fw}, nil
}

type writer struct {
	ctx     context.Context
	s       *Storage
	c       *conn
	p, full string
	fw      *gohdfs.FileWriter
	written bool // bytes were handed to the block stream
	failed  error
	done    bool
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: %w (writer closed)", w.s.URI(w.p), checkpoint.ErrUnavailable)
	}
	if w.failed != nil {
		return 0, w.failed
	}
	if err := w.ctx.Err(); err != nil {
		w.failed = w.s.mapErr(nil, "write", w.p, err)
		return 0, w.failed
	}
	if len(b) == 0 {
		return 0, nil // no block for nothing
	}
	_ = w.fw.SetDeadline(w.s.deadline(w.ctx))
	w.written = true
	n, err := w.fw.Write(b)
	if err != nil {
		w.failed = w.s.mapErr(w.c, "write", w.p, err)
		return n, w.failed
	}
	return n, nil
}

// Close completes the file. After a failed Write, a cancelled context or a
// failure to finish, the file is deleted instead and Close fails.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.s.release(w.c)
	if w.failed != nil {
		w.abort()
		return fmt.Errorf("close %s: %w (an earlier write failed; file removed: %v)", w.s.URI(w.p), checkpoint.ErrUnavailable, w.failed)
	}
	if err := w.ctx.Err(); err != nil {
		w.abort()
		return fmt.Errorf("close %s: %w (file removed)", w.s.URI(w.p), err)
	}
	_ = w.fw.SetDeadline(w.s.deadline(w.ctx))
	if err := w.fw.Close(); err != nil {
		err = w.s.mapErr(w.c, "close", w.p, err)
		w.abort()
		return err
	}
	return nil
}

// abort deletes the file being written, then releases the block stream
// with a deadline in the past so that it fails at once instead of finishing
// the block. The delete comes first: the library's Close ends with
// "complete", which must find no file.
func (w *writer) abort() {
	removed := w.c.c.Remove(w.full) == nil
	if !removed {
		// The writer's namenode connection may be the one that broke; a
		// fresh client may reach the namenode (restarted, or the other of
		// an HA pair).
		if c, err := w.s.acquire("abort", w.p); err == nil {
			if c != w.c {
				removed = c.c.Remove(w.full) == nil
			}
			w.s.release(c)
		}
	}
	if removed || w.written {
		_ = w.fw.SetDeadline(time.Unix(1, 0))
		_ = w.fw.Close()
	}
}

// Open opens a file for reading; data streams from the datanode as it is
// read.
func (s *Storage) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	full, err := s.resolve(ctx, "open", p)
	if err != nil {
		return nil, err
	}
	c, err := s.acquire("open", p)
	if err != nil {
		return nil, err
	}
	fr, err := c.c.Open(full)
	if err != nil {
		s.release(c)
		return nil, s.mapErr(c, "open", p, err)
	}
	if fr.Stat().IsDir() {
		fr.Close()
		s.release(c)
		return nil, fmt.Errorf("open %s: %w (is a directory)", s.URI(p), checkpoint.ErrNotFound)
	}
	return &reader{ctx: ctx, s: s, c: c, p: p, fr: fr}, nil
}

type reader struct {
	ctx  context.Context
	s    *Storage
	c    *conn
	p    string
	fr   *gohdfs.FileReader
	done bool
}

func (r *reader) Read(b []byte) (int, error) {
	if r.done {
		return 0, fmt.Errorf("read %s: %w (reader closed)", r.s.URI(r.p), checkpoint.ErrUnavailable)
	}
	if err := r.ctx.Err(); err != nil {
		return 0, r.s.mapErr(nil, "read", r.p, err)
	}
	_ = r.fr.SetDeadline(r.s.deadline(r.ctx))
	n, err := r.fr.Read(b)
	if err != nil && err != io.EOF {
		return n, r.s.mapErr(r.c, "read", r.p, err)
	}
	return n, err
}

func (r *reader) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	err := r.fr.Close()
	r.s.release(r.c)
	return err
}

// Stat describes one file or directory.
func (s *Storage) Stat(ctx context.Context, p string) (checkpoint.FileInfo, error) {
	full, err := s.resolve(ctx, "stat", p)
	if err != nil {
		return checkpoint.FileInfo{}, err
	}
	c, err := s.acquire("stat", p)
	if err != nil {
		return checkpoint.FileInfo{}, err
	}
	defer s.release(c)
	fi, err := c.c.Stat(full)
	if err != nil {
		return checkpoint.FileInfo{}, s.mapErr(c, "stat", p, err)
	}
	info := checkpoint.FileInfoOf(fi)
	info.Name = path.Base(full)
	return info, nil
}

// Rename moves from to to; ErrExists when to exists.
func (s *Storage) Rename(ctx context.Context, from, to string) error {
	src, err := s.resolve(ctx, "rename", from)
	if err != nil {
		return err
	}
	dst, err := s.resolve(ctx, "rename", to)
	if err != nil {
		return err
	}
	op := "rename " + s.URI(from) + " to"
	if src == s.opts.Root || dst == s.opts.Root {
		return fmt.Errorf("%s %s: %w (cannot rename the storage root)", op, s.URI(to), checkpoint.ErrPermission)
	}
	c, err := s.acquire("rename", from)
	if err != nil {
		return err
	}
	defer s.release(c)
	if _, err := c.c.Stat(src); err != nil {
		return s.mapErr(c, "rename", from, err)
	}
	if _, err := c.c.Stat(dst); err == nil {
		return fmt.Errorf("%s %s: %w", op, s.URI(to), checkpoint.ErrExists)
	} else if !errors.Is(err, os.ErrNotExist) {
		return s.mapErr(c, op, to, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, s.URI(to), err)
	}
	if err := c.c.MkdirAll(path.Dir(dst), 0o755); err != nil {
		return s.mapErr(c, op, to, err)
	}
	return s.mapErr(c, op, to, c.c.Rename(src, dst))
}

// List returns the entries directly under dir, sorted by name.
func (s *Storage) List(ctx context.Context, dir string) ([]checkpoint.FileInfo, error) {
	full, err := s.resolve(ctx, "list", dir)
	if err != nil {
		return nil, err
	}
	c, err := s.acquire("list", dir)
	if err != nil {
		return nil, err
	}
	defer s.release(c)
	fr, err := c.c.Open(full)
	if err != nil {
		return nil, s.mapErr(c, "list", dir, err)
	}
	defer fr.Close()
	if !fr.Stat().IsDir() {
		return nil, fmt.Errorf("list %s: %w (not a directory)", s.URI(dir), checkpoint.ErrNotFound)
	}
	fis, err := fr.Readdir(0)
	if err != nil {
		return nil, s.mapErr(c, "list", dir, err)
	}
	out := make([]checkpoint.FileInfo, 0, len(fis))
	for _, fi := range fis {
		out = append(out, checkpoint.FileInfoOf(fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteAll removes path and everything below it.
func (s *Storage) DeleteAll(ctx context.Context, p string) error {
	full, err := s.resolve(ctx, "delete", p)
	if err != nil {
		return err
	}
	if full == s.opts.Root {
		return fmt.Errorf("delete %s: %w (refusing to delete the storage root)", s.URI(p), checkpoint.ErrPermission)
	}
	c, err := s.acquire("delete", p)
	if err != nil {
		return err
	}
	defer s.release(c)
	return s.mapErr(c, "delete", p, c.c.RemoveAll(full))
}
