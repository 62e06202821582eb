package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
)

// fileStorage is Storage on the local file system (file://). A file is
// written under its final name and fsynced on Close, together with its
// directory; Rename is a hard link plus a remove, which fails when the target
// exists and never shows a partial file.
type fileStorage struct {
	root   string // absolute, cleaned, OS separators
	closed atomic.Bool
}

func openFile(u *url.URL) (Storage, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("checkpoint storage %s: file:// takes no host (want file:///absolute/path)", u.Redacted())
	}
	if u.Path == "" || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
		return nil, fmt.Errorf("checkpoint storage %s: want an absolute path (file:///absolute/path)", u.Redacted())
	}
	return &fileStorage{root: filepath.Clean(filepath.FromSlash(u.Path))}, nil
}

func openLocalPath(p string) (Storage, error) {
	if p == "" {
		return nil, errors.New("checkpoint storage: empty path")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %q: %w", p, err)
	}
	return &fileStorage{root: abs}, nil
}

// FileURI returns the file:// URI of a local path (made absolute).
func FileURI(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}

func (s *fileStorage) URI(p string) string {
	full := s.root
	if rel, err := cleanRel(p); err == nil && rel != "" {
		full = filepath.Join(s.root, filepath.FromSlash(rel))
	} else if err != nil {
		full = s.root + "/" + p
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(full)}).String()
}

// cleanRel turns a storage path into a clean relative slash path ("" is the
// root). Paths are relative to the root: a leading slash is ignored, and a
// ".." that would leave the root is refused.
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
			if filepath.Separator != '/' && strings.ContainsRune(e, filepath.Separator) {
				return "", errors.New("path contains an OS path separator")
			}
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, "/"), nil
}

// resolve maps a storage path to a local path, checking it and the context.
func (s *fileStorage) resolve(ctx context.Context, op, p string) (string, error) {
	if s.closed.Load() {
		return "", fmt.Errorf("%s %s: %w (storage closed)", op, s.URI(p), ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s %s: %w", op, s.URI(p), err)
	}
	rel, err := cleanRel(p)
	if err != nil {
		return "", fmt.Errorf("%s %q under %s: %w (%v)", op, p, s.URI(""), ErrPermission, err)
	}
	if rel == "" {
		return s.root, nil
	}
	return filepath.Join(s.root, filepath.FromSlash(rel)), nil
}

// mapErr wraps an OS error with the operation, the URI and the error kind.
func (s *fileStorage) mapErr(op, p string, err error) error {
	if err == nil {
		return nil
	}
	cause := err
	var pe *fs.PathError
	var le *os.LinkError
	if errors.As(err, &pe) {
		cause = pe.Err
	} else if errors.As(err, &le) {
		cause = le.Err
	}
	var kind error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", op, s.URI(p), err)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrPermission),
		errors.Is(err, ErrUnavailable), errors.Is(err, ErrCorrupt):
		return fmt.Errorf("%s %s: %w", op, s.URI(p), err)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		kind = ErrNotFound
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		kind = ErrExists
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		kind = ErrPermission
	default:
		kind = ErrUnavailable
	}
	return fmt.Errorf("%s %s: %w (%w)", op, s.URI(p), kind, cause)
}

func (s *fileStorage) Create(ctx context.Context, p string) (io.WriteCloser, error) {
	full, err := s.resolve(ctx, "create", p)
	if err != nil {
		return nil, err
	}
	if full == s.root {
		return nil, s.mapErr("create", p, fs.ErrExist)
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return nil, s.mapErr("create", p, err)
	}
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, s.mapErr("create", p, err)
	}
	return &fileWriter{ctx: ctx, s: s, p: p, full: full, f: f}, nil
}

type fileWriter struct {
	ctx    context.Context
	s      *fileStorage
	p      string
	full   string
	f      *os.File
	failed bool
	done   bool
}

func (w *fileWriter) Write(b []byte) (int, error) {
	if w.done {
		return 0, w.s.mapErr("write", w.p, fs.ErrClosed)
	}
	if err := w.ctx.Err(); err != nil {
		w.failed = true
		return 0, w.s.mapErr("write", w.p, err)
	}
	n, err := w.f.Write(b)
	if err != nil {
		w.failed = true
		return n, w.s.mapErr("write", w.p, err)
	}
	return n, nil
}

// Close makes the file durable (file and directory fsync). After a failed
// Write, or when the sync fails, it removes the file so that no partial file
// remains under the final name.
func (w *fileWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	var err error
	if w.failed {
		err = errors.New("an earlier write failed")
	} else if err = w.ctx.Err(); err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(w.full))
	}
	if err != nil {
		_ = os.Remove(w.full)
		if w.failed {
			return fmt.Errorf("close %s: %w (an earlier write failed; file removed)", w.s.URI(w.p), ErrUnavailable)
		}
		return w.s.mapErr("close", w.p, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot fsync a directory; the file itself is synced.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	return err
}

func (s *fileStorage) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	full, err := s.resolve(ctx, "open", p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(full)
	if err != nil {
		return nil, s.mapErr("open", p, err)
	}
	if fi, err := f.Stat(); err != nil {
		f.Close()
		return nil, s.mapErr("open", p, err)
	} else if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("open %s: %w (is a directory)", s.URI(p), ErrNotFound)
	}
	return &fileReader{ctx: ctx, s: s, p: p, f: f}, nil
}

type fileReader struct {
	ctx context.Context
	s   *fileStorage
	p   string
	f   *os.File
}

func (r *fileReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, r.s.mapErr("read", r.p, err)
	}
	n, err := r.f.Read(b)
	if err != nil && err != io.EOF {
		return n, r.s.mapErr("read", r.p, err)
	}
	return n, err
}

func (r *fileReader) Close() error { return r.f.Close() }

func (s *fileStorage) Stat(ctx context.Context, p string) (FileInfo, error) {
	full, err := s.resolve(ctx, "stat", p)
	if err != nil {
		return FileInfo{}, err
	}
	fi, err := os.Stat(full)
	if err != nil {
		return FileInfo{}, s.mapErr("stat", p, err)
	}
	return FileInfoOf(fi), nil
}

// FileInfoOf is a storage's FileInfo for a file system's entry (the size
// of files only).
func FileInfoOf(fi fs.FileInfo) FileInfo {
	info := FileInfo{Name: fi.Name(), Dir: fi.IsDir(), ModTime: fi.ModTime()}
	if !info.Dir {
		info.Size = fi.Size()
	}
	return info
}

func (s *fileStorage) Rename(ctx context.Context, from, to string) error {
	src, err := s.resolve(ctx, "rename", from)
	if err != nil {
		return err
	}
	dst, err := s.resolve(ctx, "rename", to)
	if err != nil {
		return err
	}
	op := "rename " + s.URI(from) + " to"
	fi, err := os.Lstat(src)
	if err != nil {
		return s.mapErr("rename", from, err)
	}
	if src == s.root || dst == s.root {
		return fmt.Errorf("%s %s: %w (cannot rename the storage root)", op, s.URI(to), ErrPermission)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return s.mapErr(op, to, err)
	}
	if !fi.IsDir() {
		// link fails with EEXIST when dst exists: atomic and never replaces.
		err := os.Link(src, dst)
		if err == nil {
			if err := os.Remove(src); err != nil {
				return s.mapErr("rename (remove source)", from, err)
			}
			return s.mapErr(op, to, syncDir(filepath.Dir(dst)))
		}
		if errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist) {
			return s.mapErr(op, to, err)
		}
		// File systems without hard links fall through to the checked rename.
	}
	// Directories (and file systems without hard links): check, then rename.
	// rename(2) refuses a non-empty target directory by itself.
	if _, err := os.Lstat(dst); err == nil {
		return s.mapErr(op, to, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return s.mapErr(op, to, err)
	}
	if err := os.Rename(src, dst); err != nil {
		return s.mapErr(op, to, err)
	}
	return s.mapErr(op, to, syncDir(filepath.Dir(dst)))
}

func (s *fileStorage) List(ctx context.Context, dir string) ([]FileInfo, error) {
	full, err := s.resolve(ctx, "list", dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(full) // sorted by name
	if err != nil {
		return nil, s.mapErr("list", dir, err)
	}
	out := make([]FileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, s.mapErr("list", dir, err)
		}
		out = append(out, FileInfoOf(fi))
	}
	return out, nil
}

func (s *fileStorage) DeleteAll(ctx context.Context, p string) error {
	full, err := s.resolve(ctx, "delete", p)
	if err != nil {
		return err
	}
	if full == s.root {
		return fmt.Errorf("delete %s: %w (refusing to delete the storage root)", s.URI(p), ErrPermission)
	}
	return s.mapErr("delete", p, os.RemoveAll(full))
}

func (s *fileStorage) Close() error {
	s.closed.Store(true)
	return nil
}
