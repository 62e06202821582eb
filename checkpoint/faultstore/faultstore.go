// Package faultstore wraps a checkpoint.Storage and injects failures, delays
// and corruption by operation and path pattern, for tests of the code that
// writes, restores and retains checkpoints.
//
// A pattern is matched with path.Match against the whole slash path (so "*"
// stops at a slash: "job/chk-*/_metadata"); a pattern without a slash is
// also matched against the base name ("_metadata.tmp", "*.tmp"); the empty
// pattern matches every path. Rename matches its source or its target.
package faultstore

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/weir-stream/weir/checkpoint"
)

// Op is a storage operation a fault applies to.
type Op int

// Operations. Write and Close are the writer's calls after Create; Read is
// the reader's after Open.
const (
	Create Op = iota + 1
	Write
	Close
	Open
	Read
	Rename
	List
	Delete
	Stat
)

var opNames = [...]string{Create: "create", Write: "write", Close: "close", Open: "open", Read: "read",
	Rename: "rename", List: "list", Delete: "delete", Stat: "stat"}

func (o Op) String() string {
	if o > 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

type rule struct {
	op      Op
	pattern string
	err     error         // Fail
	times   int           // Fail: matching calls left to fail; 0 is every one
	delay   time.Duration // Slow
}

// Store is a Storage that injects the faults configured on it into calls to
// the inner storage. It is safe for concurrent use; rules may change while
// calls are in flight.
type Store struct {
	inner checkpoint.Storage

	mu      sync.Mutex
	rules   []rule
	corrupt []string
	calls   map[Op]int
}

var _ checkpoint.Storage = (*Store)(nil)

// New wraps inner. With no rules configured it passes every call through.
func New(inner checkpoint.Storage) *Store {
	return &Store{inner: inner, calls: map[Op]int{}}
}

// Fail makes op fail with err (wrapped, so errors.Is works) on paths
// matching pattern, before the inner storage is called. A failed Close still
// closes the inner writer and leaves the file as written; a failed Write
// makes Close delete the file. The rule holds until Reset.
func (s *Store) Fail(op Op, pattern string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, rule{op: op, pattern: pattern, err: err})
}

// FailTimes is Fail for the next n matching calls only; later calls pass.
func (s *Store) FailTimes(op Op, pattern string, n int, err error) {
	if n < 1 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, rule{op: op, pattern: pattern, err: err, times: n})
}

// Slow delays op on paths matching pattern by d, or until the call's
// context is done (the call then fails with the context's error).
func (s *Store) Slow(op Op, pattern string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, rule{op: op, pattern: pattern, delay: d})
}

// Corrupt makes reads of files matching pattern return the file with one
// byte flipped: the byte in the middle (offset size/2), so that a checksum
// over the content, not only a magic number, has to catch it. Files opened
// before the call are not affected.
func (s *Store) Corrupt(pattern string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt = append(s.corrupt, pattern)
}

// Reset removes every rule and zeroes the call counts.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules, s.corrupt, s.calls = nil, nil, map[Op]int{}
}

// Calls returns how many times op was called since New or Reset, failed
// calls included.
func (s *Store) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Match reports whether pattern matches p under this package's rules.
func Match(pattern, p string) bool {
	if pattern == "" {
		return true
	}
	p = strings.Trim(p, "/")
	if ok, _ := path.Match(pattern, p); ok {
		return true
	}
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, path.Base(p))
		return ok
	}
	return false
}

// inject counts the call, applies matching delays and returns the first
// matching failure.
func (s *Store) inject(ctx context.Context, op Op, paths ...string) error {
	s.mu.Lock()
	s.calls[op]++
	var delay time.Duration
	var fail error
	kept := s.rules[:0]
	for _, r := range s.rules {
		if r.op == op && matchAny(r.pattern, paths) {
			delay += r.delay
			if r.err != nil && fail == nil {
				fail = r.err
				if r.times > 0 {
					if r.times--; r.times == 0 {
						continue // used up
					}
				}
			}
		}
		kept = append(kept, r)
	}
	s.rules = kept
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("faultstore: %s %s: %w", op, paths[0], ctx.Err())
		}
	}
	if fail != nil {
		return fmt.Errorf("faultstore: %s %s: %w", op, paths[0], fail)
	}
	return nil
}

func matchAny(pattern string, paths []string) bool {
	for _, p := range paths {
		if Match(pattern, p) {
			return true
		}
	}
	return false
}

func (s *Store) corrupted(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pat := range s.corrupt {
		if Match(pat, p) {
			return true
		}
	}
	return false
}

func (s *Store) Create(ctx context.Context, p string) (io.WriteCloser, error) {
	if err := s.inject(ctx, Create, p); err != nil {
		return nil, err
	}
	w, err := s.inner.Create(ctx, p)
	if err != nil {
		return nil, err
	}
	return &writer{s: s, ctx: ctx, p: p, w: w}, nil
}

type writer struct {
	s      *Store
	ctx    context.Context
	p      string
	w      io.WriteCloser
	failed bool
}

func (w *writer) Write(b []byte) (int, error) {
	if err := w.s.inject(w.ctx, Write, w.p); err != nil {
		w.failed = true
		return 0, err
	}
	n, err := w.w.Write(b)
	if err != nil {
		w.failed = true
	}
	return n, err
}

// Close closes the inner writer. After an injected Write failure it also
// deletes the file, as the Storage contract wants of a writer closed after a
// failed Write.
func (w *writer) Close() error {
	ierr := w.s.inject(w.ctx, Close, w.p)
	err := w.w.Close()
	if w.failed {
		_ = w.s.inner.DeleteAll(context.WithoutCancel(w.ctx), w.p)
		if err == nil {
			err = fmt.Errorf("faultstore: close %s: %w (an earlier write failed)", w.p, checkpoint.ErrUnavailable)
		}
	}
	if ierr != nil {
		return ierr
	}
	return err
}

func (s *Store) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if err := s.inject(ctx, Open, p); err != nil {
		return nil, err
	}
	flip := int64(-1)
	if s.corrupted(p) {
		fi, err := s.inner.Stat(ctx, p)
		if err == nil && fi.Size > 0 {
			flip = fi.Size / 2
		}
	}
	r, err := s.inner.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return &reader{s: s, ctx: ctx, p: p, r: r, flip: flip}, nil
}

type reader struct {
	s    *Store
	ctx  context.Context
	p    string
	r    io.ReadCloser
	off  int64
	flip int64 // offset of the byte to flip; -1 for none
}

func (r *reader) Read(b []byte) (int, error) {
	if err := r.s.inject(r.ctx, Read, r.p); err != nil {
		return 0, err
	}
	n, err := r.r.Read(b)
	if r.flip >= r.off && r.flip < r.off+int64(n) {
		b[r.flip-r.off] ^= 0xff
	}
	r.off += int64(n)
	return n, err
}

func (r *reader) Close() error { return r.r.Close() }

func (s *Store) Stat(ctx context.Context, p string) (checkpoint.FileInfo, error) {
	if err := s.inject(ctx, Stat, p); err != nil {
		return checkpoint.FileInfo{}, err
	}
	return s.inner.Stat(ctx, p)
}

func (s *Store) Rename(ctx context.Context, from, to string) error {
	if err := s.inject(ctx, Rename, from, to); err != nil {
		return err
	}
	return s.inner.Rename(ctx, from, to)
}

func (s *Store) List(ctx context.Context, dir string) ([]checkpoint.FileInfo, error) {
	if err := s.inject(ctx, List, dir); err != nil {
		return nil, err
	}
	return s.inner.List(ctx, dir)
}

func (s *Store) DeleteAll(ctx context.Context, p string) error {
	if err := s.inject(ctx, Delete, p); err != nil {
		return err
	}
	return s.inner.DeleteAll(ctx, p)
}

func (s *Store) URI(p string) string { return s.inner.URI(p) }

func (s *Store) Close() error { return s.inner.Close() }
