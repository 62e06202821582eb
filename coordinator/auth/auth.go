// Package auth authenticates REST API callers by bearer token and says what
// each may do: tokens are kept hashed in a file (one line per token: name,
// role, hash), which is read again whenever it changes (docs/security.md).
package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Role is what a token may do; each role may do everything the ones below
// it may.
type Role int

// Roles, weakest first.
const (
	// Viewer reads: every GET.
	Viewer Role = iota + 1
	// Operator also changes jobs: submit, cancel, savepoints.
	Operator
	// Admin may do everything, including what is admin-only.
	Admin
)

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole parses viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "operator":
		return Operator, nil
	case "admin":
		return Admin, nil
	}
	return 0, fmt.Errorf("unknown role %q: want viewer, operator or admin", s)
}

// Principal is who presented a token.
type Principal struct {
	// Name is the token's name in the tokens file (what audit lines show).
	Name string
	Role Role
}

// TokenPrefix starts every token NewToken makes, so a leaked one is easy to
// recognise (and to scan for).
const TokenPrefix = "weir_"

// NewToken returns a fresh token: 256 random bits, base64url.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: reading random bytes: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Hash is how a token is kept in the tokens file. Tokens are 256 random
// bits, not passwords, so one SHA-256 is enough: a slow hash only helps
// against guessing low-entropy secrets, and would cost every request.
func Hash(token string) string {
	s := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(s[:])
}

// Line is the tokens-file line for a token.
func Line(name string, role Role, token string) string {
	return name + " " + role.String() + " " + Hash(token)
}

// CheckName says whether name can name a token: 1–64 letters, digits and
// . _ @ -, so audit lines stay one word.
func CheckName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("token name %q: want 1 to 64 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)) {
			return fmt.Errorf("token name %q: only letters, digits and . _ @ - are allowed", name)
		}
	}
	return nil
}

// Parse reads a tokens file: one token per line, `NAME ROLE sha256:HEX`;
// blank lines and lines starting with # are ignored. Every problem is
// reported with its line number. The result maps each hash to its holder.
func Parse(data []byte) (map[string]Principal, error) {
	out := map[string]Principal{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			errs = append(errs, fmt.Errorf("line %d: want NAME ROLE sha256:HEX, got %d field(s)", n, len(f)))
			continue
		}
		if err := CheckName(f[0]); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
		}
		role, err := ParseRole(f[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
		}
		h, ok := strings.CutPrefix(f[2], "sha256:")
		if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != sha256.Size {
			// Never echo the field: a token pasted here by mistake would
			// land in the log.
			errs = append(errs, fmt.Errorf("line %d: the third field must be sha256: and 64 hex digits (make lines with `weir token create`)", n))
			continue
		}
		key := "sha256:" + strings.ToLower(h)
		if p, dup := out[key]; dup {
			errs = append(errs, fmt.Errorf("line %d: the same token hash as %q", n, p.Name))
			continue
		}
		if len(errs) == 0 {
			out[key] = Principal{Name: f[0], Role: role}
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("line %d: %w", n+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Tokens is a tokens file, read again when it changes: its size,
// modification time or inode differ from the last read.
type Tokens struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	stamp  stamp
	byHash map[string]Principal
}

type stamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

// Open reads the tokens file at path. A file that does not parse is an
// error here; once open, a bad edit keeps the tokens read last (and logs
// why) so that a half-written file does not lock everyone out.
func Open(path string, log *slog.Logger) (*Tokens, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tokens{path: path, log: log}
	if err := t.reload(); err != nil {
		return nil, err
	}
	if len(t.byHash) == 0 {
		log.Warn("the tokens file holds no token: every REST call but /healthz will be refused until one is added", "file", path)
	}
	return t, nil
}

// Len is the number of tokens read.
func (t *Tokens) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byHash)
}

func (t *Tokens) reload() error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	st := stampOf(fi)
	if st == t.stamp && t.byHash != nil {
		return nil
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return fmt.Errorf("tokens file %s: %w", t.path, err)
	}
	if t.byHash != nil {
		t.log.Info("tokens file read again", "file", t.path, "tokens", len(m))
	}
	t.stamp, t.byHash = st, m
	return nil
}

// Lookup returns who holds token. It reads the file again first when it
// changed, so an added or revoked token counts from the next request.
func (t *Tokens) Lookup(token string) (Principal, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.stamp
	if err := t.reload(); err != nil {
		// Log a bad edit (or a removed file) once, not on every request.
		t.stamp = stamp{}
		if fi, serr := os.Stat(t.path); serr == nil {
			t.stamp = stampOf(fi)
		}
		if t.stamp != old {
			t.log.Error("tokens file changed but cannot be used; keeping the tokens read before", "err", err)
		}
	}
	p, ok := t.byHash[Hash(token)]
	return p, ok
}

// Bearer returns the token of an `Authorization: Bearer` header, "" when
// there is none.
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func stampOf(fi os.FileInfo) stamp {
	s := stamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}
