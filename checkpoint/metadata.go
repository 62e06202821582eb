package checkpoint

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"

	"google.golang.org/protobuf/proto"

	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// The metadata file and its envelope.
const (
	// MetadataFile is the name of a checkpoint's metadata file; its
	// appearance (by rename) is the checkpoint's commit point.
	MetadataFile = "_metadata"
	// MetadataTempFile is where WriteMetadata writes before the rename.
	MetadataTempFile = "_metadata.tmp"
	// FormatVersion is the only Metadata.format_version this code reads.
	FormatVersion = 1
	// MaxMetadataSize bounds what ReadMetadata reads, so a damaged length
	// cannot make it allocate without limit.
	MaxMetadataSize = 256 << 20

	metadataMagic = "WEIRCKPT"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C is the checksum of state files and of the metadata message
// (CRC-32, Castagnoli polynomial).
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// EncodeMetadata returns the _metadata envelope of m: the magic "WEIRCKPT",
// the length of the message as a uvarint, the message (deterministic proto
// encoding), and the CRC-32C of the message as 4 bytes big-endian. A zero
// format_version is written as FormatVersion; any other unknown version is
// refused.
func EncodeMetadata(m *checkpointpb.Metadata) ([]byte, error) {
	if m == nil {
		return nil, errors.New("checkpoint metadata: nil message")
	}
	switch m.GetFormatVersion() {
	case FormatVersion:
	case 0:
		m = proto.CloneOf(m)
		m.FormatVersion = FormatVersion
	default:
		return nil, fmt.Errorf("checkpoint metadata: format_version %d, this build writes %d", m.GetFormatVersion(), FormatVersion)
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("checkpoint metadata: encode: %w", err)
	}
	out := make([]byte, 0, len(metadataMagic)+binary.MaxVarintLen64+len(body)+4)
	out = append(out, metadataMagic...)
	out = binary.AppendUvarint(out, uint64(len(body)))
	out = append(out, body...)
	out = binary.BigEndian.AppendUint32(out, CRC32C(body))
	return out, nil
}

// DecodeMetadata parses a _metadata envelope. Every failure wraps ErrCorrupt
// and says what is wrong (magic, length, checksum, message, version, a state
// handle).
func DecodeMetadata(b []byte) (*checkpointpb.Metadata, error) {
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	if len(b) < len(metadataMagic) || !bytes.Equal(b[:len(metadataMagic)], []byte(metadataMagic)) {
		return nil, corrupt("bad magic (not a weir checkpoint metadata file)")
	}
	rest := b[len(metadataMagic):]
	n, k := binary.Uvarint(rest)
	if k <= 0 {
		return nil, corrupt("bad length field")
	}
	rest = rest[k:]
	if n > uint64(len(rest)) || uint64(len(rest))-n < 4 {
		return nil, corrupt("truncated: length says %d bytes of message and 4 of checksum, %d remain", n, len(rest))
	}
	if uint64(len(rest))-n > 4 {
		return nil, corrupt("%d unexpected bytes after the checksum", uint64(len(rest))-n-4)
	}
	body, sum := rest[:n], binary.BigEndian.Uint32(rest[n:])
	if got := CRC32C(body); got != sum {
		return nil, corrupt("checksum mismatch: recorded crc32c %08x, computed %08x", sum, got)
	}
	m := &checkpointpb.Metadata{}
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, corrupt("message does not decode: %v", err)
	}
	if m.GetFormatVersion() != FormatVersion {
		return nil, corrupt("format_version %d, this build reads %d", m.GetFormatVersion(), FormatVersion)
	}
	for _, st := range m.GetSubtasks() {
		for _, op := range st.GetOperators() {
			h := op.GetHandle()
			if h == nil {
				continue
			}
			if err := checkHandlePath(h.GetPath()); err != nil {
				return nil, corrupt("vertex %q subtask %d node %q: %v", st.GetVertexId(), st.GetSubtask(), op.GetNode(), err)
			}
			if h.GetSize() < 0 {
				return nil, corrupt("vertex %q subtask %d node %q: negative state size %d", st.GetVertexId(), st.GetSubtask(), op.GetNode(), h.GetSize())
			}
		}
	}
	return m, nil
}

// checkHandlePath refuses state paths that leave the checkpoint directory.
func checkHandlePath(p string) error {
	rel, err := cleanRel(p)
	if err != nil || rel == "" || rel != p {
		return fmt.Errorf("state path %q is not a clean path inside the checkpoint directory", p)
	}
	return nil
}

// WriteMetadata commits the checkpoint in dir: it writes m's envelope to
// dir/_metadata.tmp (replacing a leftover from an earlier attempt) and renames
// it to dir/_metadata. The rename is the commit point. It fails with
// ErrExists, and leaves the existing file alone, when dir/_metadata exists.
func WriteMetadata(ctx context.Context, st Storage, dir string, m *checkpointpb.Metadata) error {
	data, err := EncodeMetadata(m)
	if err != nil {
		return err
	}
	final, tmp := path.Join(dir, MetadataFile), path.Join(dir, MetadataTempFile)
	if _, err := st.Stat(ctx, final); err == nil {
		return fmt.Errorf("write checkpoint metadata %s: %w", st.URI(final), ErrExists)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("write checkpoint metadata: %w", err)
	}
	if err := st.DeleteAll(ctx, tmp); err != nil {
		return fmt.Errorf("write checkpoint metadata: %w", err)
	}
	if err := writeFile(ctx, st, tmp, data); err != nil {
		return fmt.Errorf("write checkpoint metadata: %w", err)
	}
	if err := st.Rename(ctx, tmp, final); err != nil {
		_ = st.DeleteAll(context.WithoutCancel(ctx), tmp)
		return fmt.Errorf("commit checkpoint metadata: %w", err)
	}
	return nil
}

// writeFile creates p with data, deleting what it wrote when anything fails.
func writeFile(ctx context.Context, st Storage, p string, data []byte) error {
	w, err := st.Create(ctx, p)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		_ = st.DeleteAll(context.WithoutCancel(ctx), p)
		return err
	}
	if err := w.Close(); err != nil {
		_ = st.DeleteAll(context.WithoutCancel(ctx), p)
		return err
	}
	return nil
}

// ReadMetadata reads and checks dir/_metadata. A missing file wraps
// ErrNotFound; a damaged one wraps ErrCorrupt; both name the file's URI.
func ReadMetadata(ctx context.Context, st Storage, dir string) (*checkpointpb.Metadata, error) {
	p := path.Join(dir, MetadataFile)
	r, err := st.Open(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint metadata: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("read checkpoint metadata: %w", err)
	}
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("checkpoint metadata %s: %w: larger than %d bytes", st.URI(p), ErrCorrupt, MaxMetadataSize)
	}
	m, err := DecodeMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("checkpoint metadata %s: %w", st.URI(p), err)
	}
	return m, nil
}
