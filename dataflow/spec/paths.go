package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Roots are the places a job may write to on the machines of a cluster:
// file sinks and file:// checkpoint storage only under a local directory
// root, hdfs:// storage only under an HDFS root (the same NameNode
// host:port and a path prefix), s3:// storage only under an S3 root (the
// same bucket and a key prefix). The operator configures them
// (--allowed-paths on the coordinator and every worker); without them any
// REST caller could make every worker append to any file it can open (one
// anonymous POST appended a line to /root/.ssh/authorized_keys).
//
// Local paths are checked after ".." is cleaned and symlinks are resolved
// on the deepest ancestor that exists, so a symlink inside a root that
// points out of it is refused. A refusal says the same whether or not the
// path exists, and names the roots as configured, not as resolved.
type Roots struct {
	given []string
	dirs  []string // absolute, cleaned, symlinks resolved
	hdfs  []hdfsRoot
	s3    []hdfsRoot // host is the bucket
}

type hdfsRoot struct {
	host   string // host:port, lower case
	prefix string // cleaned absolute path
}

// ErrOutsideRoots is wrapped by every refusal of a path outside the roots.
var ErrOutsideRoots = errors.New("outside the allowed paths")

// ParseRoots parses a list of roots: local directories (absolute, or
// relative to the working directory; file:///dir works too) and
// hdfs://host:port/prefix and s3://bucket/prefix. Empty entries are ignored; an empty list allows
// nothing.
func ParseRoots(entries []string) (*Roots, error) {
	r := &Roots{}
	for _, e := range entries {
		if err := r.add(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// WithStorage returns r with one more root: a checkpoint storage URI the
// operator configured (the coordinator's --checkpoint-storage), which jobs
// may therefore use.
func (r *Roots) WithStorage(uri string) (*Roots, error) {
	out := &Roots{given: append([]string(nil), r.given...), dirs: append([]string(nil), r.dirs...), hdfs: append([]hdfsRoot(nil), r.hdfs...),
		s3: append([]hdfsRoot(nil), r.s3...)}
	if err := out.add(uri); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *Roots) add(e string) error {
	e = strings.TrimSpace(e)
	if e == "" {
		return nil
	}
	scheme, rest, hasScheme := strings.Cut(e, "://")
	switch {
	case !hasScheme:
		return r.addDir(e, e)
	case strings.EqualFold(scheme, "file"):
		p, ok := localFileURIPath(rest)
		if !ok {
			return fmt.Errorf("allowed path %q: want file:///absolute/dir", e)
		}
		return r.addDir(e, p)
	case strings.EqualFold(scheme, "hdfs"):
		u, err := url.Parse(e)
		if err != nil || u.Host == "" {
			return fmt.Errorf("allowed path %q: want hdfs://host:port/prefix", e)
		}
		r.hdfs = append(r.hdfs, hdfsRoot{host: strings.ToLower(u.Host), prefix: path.Clean("/" + u.Path)})
		// Shown in refusals: without user info and query (the HDFS user
		// and client options of the coordinator's storage).
		r.given = append(r.given, (&url.URL{Scheme: "hdfs", Host: u.Host, Path: u.Path}).String())
		return nil
	case strings.EqualFold(scheme, "s3"):
		u, err := url.Parse(e)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Port() != "" {
			return fmt.Errorf("allowed path %q: want s3://bucket/prefix", e)
		}
		r.s3 = append(r.s3, hdfsRoot{host: u.Host, prefix: path.Clean("/" + u.Path)})
		r.given = append(r.given, (&url.URL{Scheme: "s3", Host: u.Host, Path: u.Path}).String())
		return nil
	default:
		return fmt.Errorf("allowed path %q: want a local directory, file:///dir, hdfs://host:port/prefix or s3://bucket/prefix", e)
	}
}

func (r *Roots) addDir(given, p string) error {
	real, err := resolve(p)
	if err != nil {
		return fmt.Errorf("allowed path %q: %w", given, err)
	}
	r.dirs = append(r.dirs, real)
	r.given = append(r.given, given)
	return nil
}

// localFileURIPath returns the path of what follows "file://": an absolute
// path with an empty or localhost host, or ./ and ../ relative paths (the
// coordinator's default storage is file://./.weir/checkpoints).
func localFileURIPath(rest string) (string, bool) {
	if strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
		return rest, true
	}
	u, err := url.Parse("file://" + rest)
	if err != nil || (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	return filepath.FromSlash(u.Path), true
}

// String lists the roots as configured.
func (r *Roots) String() string {
	if r == nil || len(r.given) == 0 {
		return "none"
	}
	return strings.Join(r.given, ", ")
}

func (r *Roots) refuse(what string) error {
	return fmt.Errorf("%s is %w (%s); the cluster operator sets them with --allowed-paths", what, ErrOutsideRoots, r.String())
}

// CheckFile reports a local path (a file sink's) that is not under a
// directory root. A nil Roots allows everything.
func (r *Roots) CheckFile(p string) error {
	if r == nil {
		return nil
	}
	if p == "" {
		return nil // the connector reports a missing path
	}
	real, err := resolve(p)
	if err != nil || !r.inDirs(real) {
		return r.refuse(fmt.Sprintf("%q", p))
	}
	return nil
}

// CheckStorage reports checkpoint storage (a URI, or a local path) that is
// not under a root: file:// and local paths under a directory root, hdfs://
// under an HDFS root, s3:// in an S3 root's bucket under its prefix (bucket
// names are case-sensitive); any other scheme is refused. A file:// URI with a
// remote host passes: no storage opens it, and opening says why. A nil
// Roots allows everything.
func (r *Roots) CheckStorage(uri string) error {
	if r == nil || uri == "" {
		return nil
	}
	scheme, rest, hasScheme := strings.Cut(uri, "://")
	switch {
	case !hasScheme:
		return r.checkStorageDir(uri, uri)
	case strings.EqualFold(scheme, "file"):
		p, ok := localFileURIPath(rest)
		if !ok {
			return nil
		}
		return r.checkStorageDir(uri, p)
	case strings.EqualFold(scheme, "hdfs"):
		u, err := url.Parse(uri)
		if err != nil {
			return r.refuse(fmt.Sprintf("checkpoint storage %q", uri))
		}
		host, p := strings.ToLower(u.Host), path.Clean("/"+u.Path)
		for _, h := range r.hdfs {
			if h.host == host && within(h.prefix, p, "/") {
				return nil
			}
		}
		return r.refuse(fmt.Sprintf("checkpoint storage %q", u.Redacted()))
	case strings.EqualFold(scheme, "s3"):
		u, err := url.Parse(uri)
		if err != nil {
			return r.refuse(fmt.Sprintf("checkpoint storage %q", uri))
		}
		p := path.Clean("/" + u.Path)
		for _, b := range r.s3 {
			if b.host == u.Host && within(b.prefix, p, "/") {
				return nil
			}
		}
		return r.refuse(fmt.Sprintf("checkpoint storage %q", u.Redacted()))
	default:
		return r.refuse(fmt.Sprintf("checkpoint storage %q", uri))
	}
}

func (r *Roots) checkStorageDir(uri, p string) error {
	real, err := resolve(p)
	if err != nil || !r.inDirs(real) {
		return r.refuse(fmt.Sprintf("checkpoint storage %q", uri))
	}
	return nil
}

func (r *Roots) inDirs(real string) bool {
	for _, d := range r.dirs {
		if within(d, real, string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// within reports whether p is root or below it; both are clean.
func within(root, p, sep string) bool {
	if p == root {
		return true
	}
	if !strings.HasSuffix(root, sep) {
		root += sep
	}
	return strings.HasPrefix(p, root)
}

// resolve makes p absolute and clean and resolves the symlinks of its
// deepest existing ancestor, so the answer is where opening p would land
// now. An entry that exists but does not resolve (a dangling symlink, which
// O_CREATE would follow, or a loop) is an error.
func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	cur, rest := abs, ""
	for {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if _, lerr := os.Lstat(cur); lerr == nil || !errors.Is(err, fs.ErrNotExist) {
			return "", errors.New("cannot be resolved")
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", errors.New("cannot be resolved")
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// CheckPaths reports every file sink path and the checkpoint storage of a
// job that is outside roots, as field errors like the spec's own. files
// holds file sinks; storage holds checkpoint storage (the coordinator adds
// its own --checkpoint-storage to it). A nil Roots allows everything.
func CheckPaths(j *Job, files, storage *Roots) error {
	var errs Errors
	for i := range j.Pipeline {
		n := &j.Pipeline[i]
		if n.Sink != nil && n.Sink.File != nil {
			if err := files.CheckFile(n.Sink.File.Path); err != nil {
				errs = append(errs, &FieldError{Path: nodePath(i) + ".sink.file.path", Msg: err.Error()})
			}
		}
	}
	if j.Checkpoint != nil {
		if err := storage.CheckStorage(j.Checkpoint.Storage); err != nil {
			errs = append(errs, &FieldError{Path: "checkpoint.storage", Msg: err.Error()})
		}
	}
	return errs.Err()
}
