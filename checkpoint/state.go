package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// CheckpointDir is the directory of checkpoint id of a job: "<job>/chk-<id>".
func CheckpointDir(jobID string, id int64) string {
	return jobID + "/chk-" + strconv.FormatInt(id, 10)
}

// SavepointDir is the directory of savepoint id of a job:
// "<job>/savepoints/sp-<id>".
func SavepointDir(jobID string, id int64) string {
	return jobID + "/savepoints/sp-" + strconv.FormatInt(id, 10)
}

// maxNameLen keeps state file names well below the 255-byte limit of
// common file systems.
const maxNameLen = 200

// StateFileName is the name of the state file one node of one subtask writes:
// "<vertex>-<subtask>-<node>", for example "count-by-ip-3-count-by-ip".
// Bytes outside [A-Za-z0-9._-] are escaped as "~XX" (hex); in the vertex so
// is a '-' followed by digits and then '-' or the vertex's end, so the first
// "-<digits>-" of a name is always the subtask and distinct triples always
// get distinct names. No name starts with '_' (reserved for _metadata). A
// name longer than 200 bytes is cut and ends in a hash of the whole triple.
func StateFileName(vertex string, subtask int, node string) string {
	var b strings.Builder
	escape(&b, vertex, false)
	b.WriteByte('-')
	b.WriteString(strconv.Itoa(subtask))
	b.WriteByte('-')
	escape(&b, node, true)
	name := b.String()
	if len(name) > maxNameLen {
		sum := sha256.Sum256([]byte(vertex + "\x00" + strconv.Itoa(subtask) + "\x00" + node))
		name = name[:maxNameLen-17] + "~" + hex.EncodeToString(sum[:8])
	}
	return name
}

// escape writes s with every byte outside [A-Za-z0-9._-] as "~XX". In the
// vertex (not isNode) a leading '_' and a '-' that could pass for the
// subtask separator are escaped too. An empty s is "~", which no escaped
// non-empty string is.
func escape(b *strings.Builder, s string, isNode bool) {
	const hexDigits = "0123456789ABCDEF"
	if s == "" {
		b.WriteByte('~')
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		keep := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' ||
			c == '_' && (isNode || i > 0) || c == '-' && (isNode || !digitsThenDashOrEnd(s[i+1:]))
		if keep {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}

// digitsThenDashOrEnd reports whether s starts with one or more digits
// followed by '-' or nothing.
func digitsThenDashOrEnd(s string) bool {
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n > 0 && (n == len(s) || s[n] == '-')
}

// WriteState writes one state file, dir/name, and returns its handle (path
// relative to dir, size, CRC-32C) for the checkpoint acknowledgement. It
// fails with ErrExists when the file exists, and deletes what it wrote when
// anything fails.
func WriteState(ctx context.Context, st Storage, dir, name string, data []byte) (*checkpointpb.StateHandle, error) {
	if err := checkHandlePath(name); err != nil {
		return nil, fmt.Errorf("write state: %w", err)
	}
	p := path.Join(dir, name)
	if err := writeFile(ctx, st, p, data); err != nil {
		return nil, fmt.Errorf("write state: %w", err)
	}
	return &checkpointpb.StateHandle{Path: name, Size: int64(len(data)), Crc32C: CRC32C(data)}, nil
}

// ReadState reads the state file h points at under dir and checks its size
// and CRC-32C. A missing file wraps ErrNotFound; a file of the wrong size or
// checksum wraps ErrCorrupt; both name the file's URI. Restore treats both
// as a corrupt checkpoint.
func ReadState(ctx context.Context, st Storage, dir string, h *checkpointpb.StateHandle) ([]byte, error) {
	if h == nil {
		return nil, errors.New("read state: nil handle")
	}
	if err := checkHandlePath(h.GetPath()); err != nil {
		return nil, fmt.Errorf("read state under %s: %w: %v", st.URI(dir), ErrCorrupt, err)
	}
	p := path.Join(dir, h.GetPath())
	if h.GetSize() < 0 || h.GetSize() > 1<<40 {
		return nil, fmt.Errorf("state file %s: %w: implausible recorded size %d", st.URI(p), ErrCorrupt, h.GetSize())
	}
	r, err := st.Open(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer r.Close()
	// Read one byte past the recorded size to notice a longer file, without
	// trusting the size for the allocation beyond what is there.
	buf := make([]byte, 0, min(h.GetSize()+1, 64<<20))
	data, err := readAllInto(buf, io.LimitReader(r, h.GetSize()+1))
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if int64(len(data)) != h.GetSize() {
		more := ""
		if int64(len(data)) > h.GetSize() {
			more = " or more"
		}
		return nil, fmt.Errorf("state file %s: %w: size %d%s bytes, recorded %d", st.URI(p), ErrCorrupt, len(data), more, h.GetSize())
	}
	if got := CRC32C(data); got != h.GetCrc32C() {
		return nil, fmt.Errorf("state file %s: %w: crc32c %08x, recorded %08x", st.URI(p), ErrCorrupt, got, h.GetCrc32C())
	}
	return data, nil
}

func readAllInto(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// ValidateForRestore checks cheaply that every state file m refers to exists
// under dir with its recorded size (the CRC is checked by ReadState). It
// reports every problem, each wrapping ErrNotFound or ErrCorrupt.
func ValidateForRestore(ctx context.Context, st Storage, dir string, m *checkpointpb.Metadata) error {
	var errs []error
	for _, sub := range m.GetSubtasks() {
		for _, op := range sub.GetOperators() {
			h := op.GetHandle()
			if h == nil {
				continue
			}
			if err := checkHandlePath(h.GetPath()); err != nil {
				errs = append(errs, fmt.Errorf("%w: %v", ErrCorrupt, err))
				continue
			}
			p := path.Join(dir, h.GetPath())
			fi, err := st.Stat(ctx, p)
			switch {
			case err != nil:
				if ctx.Err() != nil {
					return err
				}
				errs = append(errs, err)
			case fi.Dir:
				errs = append(errs, fmt.Errorf("state file %s: %w: is a directory", st.URI(p), ErrCorrupt))
			case fi.Size != h.GetSize():
				errs = append(errs, fmt.Errorf("state file %s: %w: size %d bytes, recorded %d", st.URI(p), ErrCorrupt, fi.Size, h.GetSize()))
			}
		}
	}
	return errors.Join(errs...)
}
