// Package s3 is checkpoint storage on S3 and S3-compatible object stores
// (s3://bucket/prefix), through github.com/minio/minio-go/v7. Importing it
// registers the s3 scheme with checkpoint.OpenStorage:
//
//	import _ "github.com/weir-stream/weir/checkpoint/s3"
//
// The endpoint and region come from the environment (ParseURI, EnvEndpoint),
// credentials from the AWS environment variables, ~/.aws/credentials or an
// instance/pod role, never from the URI. How the checkpoint.Storage
// contract maps onto an object store, and why:
//
//   - A file is an object under prefix/path; a directory is a key prefix
//     ending in "/", which exists while an object lies below it. There are
//     no empty directories.
//   - Create checks that neither an object nor a directory has the name,
//     then buffers one part (Options.PartSize, 8 MiB) in memory. A file that
//     fits in one part is one PUT on Close; a larger one becomes a multipart
//     upload whose parts go out as they fill and which Close completes. An
//     object only appears when the PUT or the completion succeeds, so a
//     writer that fails, is cancelled or is never closed leaves nothing that
//     Open sees (an unfinished multipart upload is aborted; one whose
//     process died stays invisible until the bucket's lifecycle rule
//     removes it, docs/s3.md).
//   - The PUT and the completion carry If-None-Match: *, so on servers that
//     honour it (AWS S3 since 2024, MinIO) two writers racing for one name
//     cannot both succeed: the loser gets ErrExists. Servers that ignore it
//     leave a window between the check in Create and Close in which a second
//     writer replaces the first; weir never has two writers of one name (a
//     state file name carries its subtask and attempt, _metadata has one
//     writer, the fenced leader coordinator).
//   - Rename is a server-side copy, then a delete of the source. S3 has no
//     rename. The copy is what matters to readers, and it is atomic in the
//     way the checkpoint protocol needs: the target appears whole or not at
//     all, never partly written. What is not atomic: both names exist for a
//     moment, and a crash between copy and delete leaves the source behind
//     (WriteMetadata deletes a stale _metadata.tmp before writing, retention
//     deletes whole checkpoint directories). Once the copy succeeded the
//     rename has committed, so a failed delete of the source is not an
//     error. ErrExists comes from a check before the copy, safe for the
//     single writer of _metadata as above. Only files are renamed; weir
//     never renames a directory.
//   - List is a delimited listing (directories are common prefixes),
//     sorted by name; DeleteAll deletes the object and everything under
//     the prefix, in batches.
//   - Errors: NoSuchKey is ErrNotFound, NoSuchBucket ErrNotFound naming the
//     bucket, AccessDenied and bad credentials ErrPermission,
//     PreconditionFailed ErrExists, everything else (an unreachable endpoint,
//     5xx after retries) ErrUnavailable with the endpoint in the message.
//     Messages name s3://bucket/key and never the credentials.
//   - Every call takes its deadline from its context; requests are retried
//     (Options.MaxRetries) only while the context allows.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/weir-stream/weir/checkpoint"
)

func init() { checkpoint.Register("s3", Open) }

// Open opens the storage an s3:// URI names (see ParseURI). It does not
// connect: the endpoint is reached on first use.
func Open(u *url.URL) (checkpoint.Storage, error) {
	o, err := ParseURI(u)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %s: %w", u.Redacted(), err)
	}
	return New(o)
}

// Storage is checkpoint.Storage on an S3 bucket. Safe for concurrent use.
type Storage struct {
	opts   Options
	core   minio.Core
	tr     *http.Transport
	closed atomic.Bool
}

var _ checkpoint.Storage = (*Storage)(nil)

// New opens a storage with the given options.
func New(o Options) (*Storage, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint storage s3: %w", err)
	}
	host, secure := o.endpoint()
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	// The environment first (explicit), then the shared credentials file,
	// then an instance, task or pod role (IMDS, ECS, web identity).
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
	c, err := minio.New(host, &minio.Options{
		Creds:      creds,
		Secure:     secure,
		Transport:  tr,
		Region:     o.Region,
		MaxRetries: o.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage s3://%s: endpoint %s: %w", o.Bucket, o.endpointURL(), err)
	}
	return &Storage{opts: o, core: minio.Core{Client: c}, tr: tr}, nil
}

// Close releases idle connections; readers and writers still open finish.
// Idempotent.
func (s *Storage) Close() error {
	s.closed.Store(true)
	s.tr.CloseIdleConnections()
	return nil
}

// URI returns s3://bucket/prefix/path.
func (s *Storage) URI(p string) string {
	rel, err := cleanRel(p)
	if err != nil {
		rel = p
	}
	return "s3://" + s.opts.Bucket + "/" + strings.TrimPrefix(s.key(rel), "/")
}

// key is the object key of a clean relative path ("" is the prefix).
func (s *Storage) key(rel string) string {
	switch {
	case s.opts.Prefix == "":
		return rel
	case rel == "":
		return s.opts.Prefix
	default:
		return s.opts.Prefix + "/" + rel
	}
}

// dirPrefix is the listing prefix of a directory ("" for the bucket root).
func (s *Storage) dirPrefix(rel string) string {
	k := s.key(rel)
	if k == "" {
		return ""
	}
	return k + "/"
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
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, "/"), nil
}

// resolve checks the storage, the context and the path.
func (s *Storage) resolve(ctx context.Context, op, p string) (string, error) {
	if s.closed.Load() {
		return "", fmt.Errorf("%s %s: %w (storage closed)", op, s.URI(p), checkpoint.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s %s: %w", op, s.URI(p), err)
	}
	rel, err := cleanRel(p)
	if err != nil {
		return "", fmt.Errorf("%s %q under %s: %w (%v)", op, p, s.URI(""), checkpoint.ErrPermission, err)
	}
	if len(s.key(rel)) > 1024 {
		return "", fmt.Errorf("%s %s: %w (an S3 key is at most 1024 bytes)", op, s.URI(rel), checkpoint.ErrPermission)
	}
	return rel, nil
}

// mapErr wraps a client error with the operation, the URI and its kind.
func (s *Storage) mapErr(op, rel string, err error) error {
	if err == nil {
		return nil
	}
	where := s.URI(rel)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, where, err)
	}
	for _, k := range []error{checkpoint.ErrNotFound, checkpoint.ErrExists, checkpoint.ErrPermission, checkpoint.ErrUnavailable} {
		if errors.Is(err, k) {
			return fmt.Errorf("%s %s: %w", op, where, err)
		}
	}
	resp := minio.ToErrorResponse(err)
	var kind error
	detail := err.Error()
	if resp.Code != "" {
		detail = resp.Code
		if resp.Message != "" {
			detail += ": " + resp.Message
		}
	}
	switch {
	case resp.Code == "NoSuchBucket":
		kind = checkpoint.ErrNotFound
		detail = fmt.Sprintf("bucket %q does not exist at %s", s.opts.Bucket, s.opts.endpointURL())
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchUpload" || resp.StatusCode == http.StatusNotFound:
		kind = checkpoint.ErrNotFound
	case resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed:
		kind = checkpoint.ErrExists
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch" ||
		resp.StatusCode == http.StatusForbidden:
		kind = checkpoint.ErrPermission
		detail += fmt.Sprintf(" (credentials from %s/%s, ~/.aws/credentials or an instance role)", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
	default:
		kind = checkpoint.ErrUnavailable
		detail = fmt.Sprintf("endpoint %s: %s", s.opts.endpointURL(), detail)
	}
	return fmt.Errorf("%s %s: %w (%s)", op, where, kind, detail)
}

// Create opens a new file for writing.
func (s *Storage) Create(ctx context.Context, p string) (io.WriteCloser, error) {
	rel, err := s.resolve(ctx, "create", p)
	if err != nil {
		return nil, err
	}
	if rel == "" {
		return nil, fmt.Errorf("create %s: %w (the storage root is a directory)", s.URI(p), checkpoint.ErrExists)
	}
	if _, err := s.stat(ctx, rel); err == nil {
		return nil, fmt.Errorf("create %s: %w", s.URI(rel), checkpoint.ErrExists)
	} else if !errors.Is(err, checkpoint.ErrNotFound) {
		return nil, s.mapErr("create", rel, err)
	}
	return &writer{ctx: ctx, s: s, rel: rel, key: s.key(rel)}, nil
}

type writer struct {
	ctx      context.Context
	s        *Storage
	rel, key string
	buf      []byte
	uploadID string
	parts    []minio.CompletePart
	failed   error
	done     bool
}

func (w *writer) Write(b []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: %w (writer closed)", w.s.URI(w.rel), checkpoint.ErrUnavailable)
	}
	if w.failed != nil {
		return 0, w.failed
	}
	if err := w.ctx.Err(); err != nil {
		w.failed = w.s.mapErr("write", w.rel, err)
		return 0, w.failed
	}
	n := 0
	for len(b) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, w.s.opts.PartSize)
		}
		k := min(len(b), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, b[:k]...)
		b, n = b[k:], n+k
		// A full part goes out only when more follows, so that a file of
		// exactly one part is still a single PUT.
		if len(w.buf) == cap(w.buf) && len(b) > 0 {
			if err := w.flushPart(); err != nil {
				w.failed = err
				return n, err
			}
		}
	}
	return n, nil
}

// flushPart uploads the buffer as the next part, starting the multipart
// upload first if this is the first part.
func (w *writer) flushPart() error {
	if w.uploadID == "" {
		id, err := w.s.core.NewMultipartUpload(w.ctx, w.s.opts.Bucket, w.key, minio.PutObjectOptions{})
		if err != nil {
			return w.s.mapErr("write", w.rel, err)
		}
		w.uploadID = id
	}
	n := len(w.parts) + 1
	md5sum, sha := sums(w.buf)
	part, err := w.s.core.PutObjectPart(w.ctx, w.s.opts.Bucket, w.key, w.uploadID, n,
		bytes.NewReader(w.buf), int64(len(w.buf)), minio.PutObjectPartOptions{Md5Base64: md5sum, Sha256Hex: sha, DisableContentSha256: true})
	if err != nil {
		return w.s.mapErr("write", w.rel, err)
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: n, ETag: part.ETag})
	w.buf = w.buf[:0]
	return nil
}

// Close makes the object: one PUT, or the last part and the completion of
// the multipart upload. After a failed Write or with a cancelled context it
// aborts instead, and the object never appears.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	if w.failed != nil {
		w.abort()
		return fmt.Errorf("close %s: %w (an earlier write failed; nothing was written: %v)", w.s.URI(w.rel), checkpoint.ErrUnavailable, w.failed)
	}
	if err := w.ctx.Err(); err != nil {
		w.abort()
		return fmt.Errorf("close %s: %w (nothing was written)", w.s.URI(w.rel), err)
	}
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*") // If-None-Match: *
	if w.uploadID == "" {
		md5sum, sha := sums(w.buf)
		opts.DisableContentSha256 = true // signs sha instead of streaming
		_, err := w.s.core.PutObject(w.ctx, w.s.opts.Bucket, w.key, bytes.NewReader(w.buf), int64(len(w.buf)), md5sum, sha, opts)
		w.buf = nil
		return w.s.mapErr("close", w.rel, err)
	}
	if len(w.buf) > 0 {
		if err := w.flushPart(); err != nil {
			w.abort()
			return err
		}
	}
	w.buf = nil
	if _, err := w.s.core.CompleteMultipartUpload(w.ctx, w.s.opts.Bucket, w.key, w.uploadID, w.parts, opts); err != nil {
		w.abort()
		return w.s.mapErr("close", w.rel, err)
	}
	return nil
}

// sums are the Content-MD5 and the payload SHA-256 of a request body. With
// the body in memory, a signed payload hash is one pass over it, and it
// spares the chunked streaming signature, which not every S3-compatible
// server decodes; the MD5 makes the server check what it received.
func sums(b []byte) (md5Base64, sha256Hex string) {
	m := md5.Sum(b)
	h := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(m[:]), hex.EncodeToString(h[:])
}

// abort drops the multipart upload, if one was started, so that its parts
// do not linger (they are never visible as an object either way).
func (w *writer) abort() {
	w.buf = nil
	if w.uploadID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	_ = w.s.core.AbortMultipartUpload(ctx, w.s.opts.Bucket, w.key, w.uploadID)
}

// Open opens a file for reading; the object streams as it is read.
func (s *Storage) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	rel, err := s.resolve(ctx, "open", p)
	if err != nil {
		return nil, err
	}
	if rel == "" {
		return nil, fmt.Errorf("open %s: %w (is a directory)", s.URI(rel), checkpoint.ErrNotFound)
	}
	body, _, _, err := s.core.GetObject(ctx, s.opts.Bucket, s.key(rel), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.mapErr("open", rel, err)
	}
	return &reader{ctx: ctx, s: s, rel: rel, body: body}, nil
}

type reader struct {
	ctx  context.Context
	s    *Storage
	rel  string
	body io.ReadCloser
	done bool
}

func (r *reader) Read(b []byte) (int, error) {
	if r.done {
		return 0, fmt.Errorf("read %s: %w (reader closed)", r.s.URI(r.rel), checkpoint.ErrUnavailable)
	}
	if err := r.ctx.Err(); err != nil {
		return 0, r.s.mapErr("read", r.rel, err)
	}
	n, err := r.body.Read(b)
	if err != nil && err != io.EOF {
		if cerr := r.ctx.Err(); cerr != nil {
			err = cerr
		}
		return n, r.s.mapErr("read", r.rel, err)
	}
	return n, err
}

func (r *reader) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	return r.body.Close()
}

// Stat describes one file or directory.
func (s *Storage) Stat(ctx context.Context, p string) (checkpoint.FileInfo, error) {
	rel, err := s.resolve(ctx, "stat", p)
	if err != nil {
		return checkpoint.FileInfo{}, err
	}
	fi, err := s.stat(ctx, rel)
	return fi, s.mapErr("stat", rel, err)
}

// stat looks for an object named rel, then for a directory (a prefix with
// something below it). The root is a directory when the bucket exists.
func (s *Storage) stat(ctx context.Context, rel string) (checkpoint.FileInfo, error) {
	name := rel[strings.LastIndex(rel, "/")+1:]
	if rel != "" {
		oi, err := s.core.Client.StatObject(ctx, s.opts.Bucket, s.key(rel), minio.StatObjectOptions{})
		if err == nil {
			return checkpoint.FileInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}, nil
		}
		if resp := minio.ToErrorResponse(err); resp.Code != "NoSuchKey" && resp.StatusCode != http.StatusNotFound ||
			resp.Code == "NoSuchBucket" {
			return checkpoint.FileInfo{}, err
		}
	}
	any, err := s.anyUnder(ctx, rel)
	if err != nil {
		return checkpoint.FileInfo{}, err
	}
	if !any && rel != "" {
		return checkpoint.FileInfo{}, checkpoint.ErrNotFound
	}
	if rel == "" {
		name = ""
	}
	return checkpoint.FileInfo{Name: name, Dir: true}, nil
}

// anyUnder reports whether an object lies under directory rel.
func (s *Storage) anyUnder(ctx context.Context, rel string) (bool, error) {
	for oi := range s.core.Client.ListObjectsIter(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: s.dirPrefix(rel), MaxKeys: 1}) {
		if oi.Err != nil {
			return false, oi.Err
		}
		return true, nil
	}
	return false, ctx.Err()
}

// Rename copies from to to on the server, then deletes from.
func (s *Storage) Rename(ctx context.Context, from, to string) error {
	src, err := s.resolve(ctx, "rename", from)
	if err != nil {
		return err
	}
	dst, err := s.resolve(ctx, "rename", to)
	if err != nil {
		return err
	}
	op := "rename " + s.URI(src) + " to"
	if src == "" || dst == "" {
		return fmt.Errorf("%s %s: %w (cannot rename the storage root)", op, s.URI(dst), checkpoint.ErrPermission)
	}
	fi, err := s.stat(ctx, src)
	if err != nil {
		return s.mapErr("rename", src, err)
	}
	if fi.Dir {
		return fmt.Errorf("%s %s: %w (S3 storage renames files only: a directory would be copied object by object)", op, s.URI(dst), checkpoint.ErrPermission)
	}
	if _, err := s.stat(ctx, dst); err == nil {
		return fmt.Errorf("%s %s: %w", op, s.URI(dst), checkpoint.ErrExists)
	} else if !errors.Is(err, checkpoint.ErrNotFound) {
		return s.mapErr(op, dst, err)
	}
	srcOpts := minio.CopySrcOptions{Bucket: s.opts.Bucket, Object: s.key(src)}
	dstOpts := minio.CopyDestOptions{Bucket: s.opts.Bucket, Object: s.key(dst)}
	if fi.Size <= 5<<30 {
		_, err = s.core.Client.CopyObject(ctx, dstOpts, srcOpts)
	} else {
		// CopyObject stops at 5 GiB; ComposeObject copies in parts.
		_, err = s.core.Client.ComposeObject(ctx, dstOpts, srcOpts)
	}
	if err != nil {
		return s.mapErr(op, dst, err)
	}
	// The copy is the commit; the source is garbage from here on, and a
	// failure to delete it must not report a committed rename as failed.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = s.core.Client.RemoveObject(dctx, s.opts.Bucket, s.key(src), minio.RemoveObjectOptions{})
	return nil
}

// List returns the entries directly under dir, sorted by name.
func (s *Storage) List(ctx context.Context, dir string) ([]checkpoint.FileInfo, error) {
	rel, err := s.resolve(ctx, "list", dir)
	if err != nil {
		return nil, err
	}
	prefix := s.dirPrefix(rel)
	var out []checkpoint.FileInfo
	for oi := range s.core.Client.ListObjectsIter(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if oi.Err != nil {
			return nil, s.mapErr("list", rel, oi.Err)
		}
		name := strings.TrimPrefix(oi.Key, prefix)
		if d, ok := strings.CutSuffix(name, "/"); ok {
			if d != "" {
				out = append(out, checkpoint.FileInfo{Name: d, Dir: true})
			}
			continue
		}
		if name == "" {
			continue
		}
		out = append(out, checkpoint.FileInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified})
	}
	if err := ctx.Err(); err != nil {
		return nil, s.mapErr("list", rel, err)
	}
	if len(out) == 0 {
		if rel != "" {
			return nil, fmt.Errorf("list %s: %w", s.URI(rel), checkpoint.ErrNotFound)
		}
		// The root exists when the bucket does.
		if ok, err := s.core.Client.BucketExists(ctx, s.opts.Bucket); err != nil {
			return nil, s.mapErr("list", rel, err)
		} else if !ok {
			return nil, s.mapErr("list", rel, minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: http.StatusNotFound})
		}
		return []checkpoint.FileInfo{}, nil
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteAll removes the object named p and every object under p/.
func (s *Storage) DeleteAll(ctx context.Context, p string) error {
	rel, err := s.resolve(ctx, "delete", p)
	if err != nil {
		return err
	}
	if rel == "" {
		return fmt.Errorf("delete %s: %w (refusing to delete the storage root)", s.URI(p), checkpoint.ErrPermission)
	}
	// Checkpoint directories hold hundreds of objects at most: list them,
	// then delete in batches of up to 1000 (one request each).
	keys := []string{s.key(rel)}
	for oi := range s.core.Client.ListObjectsIter(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: s.dirPrefix(rel), Recursive: true}) {
		if oi.Err != nil {
			return s.mapErr("delete", rel, oi.Err)
		}
		keys = append(keys, oi.Key)
	}
	if err := ctx.Err(); err != nil {
		return s.mapErr("delete", rel, err)
	}
	objs := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		objs <- minio.ObjectInfo{Key: k}
	}
	close(objs)
	var first error
	for e := range s.core.Client.RemoveObjects(ctx, s.opts.Bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && first == nil && minio.ToErrorResponse(e.Err).Code != "NoSuchKey" {
			first = e.Err
		}
	}
	if first == nil {
		first = ctx.Err()
	}
	return s.mapErr("delete", rel, first)
}
