package sdkexamples

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weir-stream/weir/sdk"
)

// LedgerConfig configures example.ledger.
type LedgerConfig struct {
	// Dir is the ledger's directory (required). Committed transactions
	// are Dir/committed/<txn>.jsonl; pending and open ones live in
	// Dir/staging until they commit or are aborted.
	Dir string `json:"dir"`
}

// Validate implements sdk.Validator.
func (c LedgerConfig) Validate() error {
	if c.Dir == "" {
		return sdk.ConfigError("dir", "required: the ledger's directory")
	}
	if !filepath.IsAbs(c.Dir) {
		return sdk.ConfigError("dir", "want an absolute path, got %q", c.Dir)
	}
	return nil
}

// LedgerTxn is a ledger transaction: the committable weir keeps in its
// checkpoints until the checkpoint completes.
type LedgerTxn struct {
	// Name is the transaction's file name:
	// <job>-<subtask>-<attempt>-<n>.jsonl.
	Name string `json:"name"`
	// Size is its length when it was pre-committed, so a commit can tell
	// a committed transaction from a lost one.
	Size int64 `json:"size"`
}

func (t LedgerTxn) String() string { return "ledger transaction " + t.Name }

// Ledger is example.ledger: a transactional sink that writes each
// checkpoint interval's records, one JSON line each, into a staging file
// and commits the file by renaming it into the committed directory. A
// reader of Dir/committed sees every record exactly once, across failures
// and restores: a transaction is visible only once the checkpoint that
// covers its records has completed, and a failure's open and
// pre-committed-but-not-completed transactions are aborted (deleted) on
// recovery, their records being replayed.
type Ledger struct {
	dir          string
	job          string
	subtask      int
	attempt      int64
	seq          int
	cur          *os.File
	curW         *bufio.Writer
	curName      string
	curN         int64
	writtenBytes *sdk.Counter
}

// NewLedger is example.ledger's factory.
func NewLedger(cfg LedgerConfig) (sdk.TransactionalSink[sdk.Record, LedgerTxn], error) {
	return &Ledger{dir: cfg.Dir}, nil
}

func (l *Ledger) staging() string   { return filepath.Join(l.dir, "staging") }
func (l *Ledger) committed() string { return filepath.Join(l.dir, "committed") }

// Open implements sdk.TransactionalSink.
func (l *Ledger) Open(ctx *sdk.ConnectorContext) error {
	l.job, l.subtask, l.attempt = ctx.JobID(), ctx.Subtask(), ctx.Attempt()
	l.writtenBytes = ctx.Metrics().Counter("ledger_bytes_total", "Bytes written to ledger transactions.")
	for _, d := range []string{l.staging(), l.committed()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Write implements sdk.TransactionalSink: the record as a JSON line in the
// open transaction, which the first record after a barrier begins.
func (l *Ledger) Write(_ context.Context, in sdk.Record) error {
	if l.cur == nil {
		// The attempt is in the name, so a zombie of an older attempt
		// never writes into this attempt's files.
		l.curName = fmt.Sprintf("%s-%d-%d-%d.jsonl", l.job, l.subtask, l.attempt, l.seq)
		l.seq++
		f, err := os.OpenFile(filepath.Join(l.staging(), l.curName), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		l.cur, l.curW, l.curN = f, bufio.NewWriter(f), 0
	}
	b, err := json.Marshal(in.Map())
	if err != nil {
		return err
	}
	b = append(b, '\n')
	n, err := l.curW.Write(b)
	l.curN += int64(n)
	l.writtenBytes.Add(float64(n))
	return err
}

// PreCommit implements sdk.TransactionalSink: the staging file is flushed,
// synced and closed; it stays invisible until Commit.
func (l *Ledger) PreCommit(_ context.Context, _ int64) (LedgerTxn, bool, error) {
	if l.cur == nil {
		return LedgerTxn{}, false, nil
	}
	f, w, t := l.cur, l.curW, LedgerTxn{Name: l.curName, Size: l.curN}
	l.cur, l.curW = nil, nil
	err := errors.Join(w.Flush(), f.Sync(), f.Close())
	if err != nil {
		return LedgerTxn{}, false, err
	}
	return t, true, syncDir(l.staging())
}

// Commit implements sdk.TransactionalSink: rename the staging file into
// the committed directory. Idempotent: when the staging file is gone the
// committed one must be there with its pre-committed size; if neither is,
// the transaction was lost and Commit says so.
func (l *Ledger) Commit(_ context.Context, t LedgerTxn) error {
	from, to := filepath.Join(l.staging(), t.Name), filepath.Join(l.committed(), t.Name)
	err := os.Rename(from, to)
	if errors.Is(err, fs.ErrNotExist) {
		fi, serr := os.Stat(to)
		if serr != nil || fi.Size() != t.Size {
			return fmt.Errorf("%s is neither staged nor committed with %d bytes: its records are lost", t, t.Size)
		}
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(l.committed())
}

// Abort implements sdk.TransactionalSink: the open transaction's file is
// deleted.
func (l *Ledger) Abort(context.Context) error {
	if l.cur == nil {
		return nil
	}
	f, name := l.cur, l.curName
	l.cur, l.curW = nil, nil
	return errors.Join(f.Close(), os.Remove(filepath.Join(l.staging(), name)))
}

// Recover implements sdk.Recoverer: after the restored transactions were
// committed, every staging file this subtask owns is a transaction that no
// completed checkpoint covers: delete it (its records are replayed).
func (l *Ledger) Recover(_ context.Context, r sdk.Recovery[LedgerTxn]) error {
	ents, err := os.ReadDir(l.staging())
	if err != nil {
		return err
	}
	owned := map[int]bool{}
	for _, s := range r.Subtasks {
		owned[s] = true
	}
	for _, e := range ents {
		job, subtask, ok := parseLedgerName(e.Name())
		if !ok || job != l.job || !owned[subtask] {
			continue
		}
		if err := os.Remove(filepath.Join(l.staging(), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// parseLedgerName reads <job>-<subtask>-<attempt>-<n>.jsonl (job ids may
// hold '-').
func parseLedgerName(name string) (job string, subtask int, ok bool) {
	base, found := strings.CutSuffix(name, ".jsonl")
	parts := strings.Split(base, "-")
	if !found || len(parts) < 4 {
		return "", 0, false
	}
	subtask, err := strconv.Atoi(parts[len(parts)-3])
	if err != nil {
		return "", 0, false
	}
	return strings.Join(parts[:len(parts)-3], "-"), subtask, true
}

// Close implements sdk.Closer.
func (l *Ledger) Close() error {
	if l.cur != nil {
		return l.cur.Close()
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// ReadLedger returns the committed records of a ledger directory, one
// JSON line each, in no particular order.
func ReadLedger(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "committed"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "committed", e.Name()))
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

func init() { sdk.RegisterSink("example.ledger", NewLedger) }
