package checkpoint

import (
	"context"
	"errors"
	"io"
	"time"
)

// Storage is where checkpoints live: a file system rooted at a URI
// (file:///var/lib/weir/checkpoints, hdfs://namenode:8020/weir,
// s3://bucket/weir). Paths are
// slash-separated and relative to the root. Every implementation passes the
// conformance suite in checkpoint/storagetest and is safe for concurrent use
// (one Storage serves every upload of a worker); a single reader or writer
// is not.
type Storage interface {
	// Create opens a new file for writing, creating parent directories. It
	// fails with ErrExists when path exists. The file is complete once Close
	// returns nil; a writer closed after a failed Write leaves no file that
	// Open can see as complete (the caller deletes it).
	Create(ctx context.Context, path string) (io.WriteCloser, error)
	// Open opens a file for reading; ErrNotFound when it does not exist.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	// Stat describes one file or directory; ErrNotFound when missing.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// Rename moves from to to atomically: readers see the old name or the
	// new one, never a partial file. It fails with ErrExists when to exists.
	Rename(ctx context.Context, from, to string) error
	// List returns the entries directly under dir, sorted by name;
	// ErrNotFound when dir does not exist.
	List(ctx context.Context, dir string) ([]FileInfo, error)
	// DeleteAll removes path and everything below it. Removing what does
	// not exist is not an error.
	DeleteAll(ctx context.Context, path string) error
	// URI returns the absolute URI of path, for messages and metadata.
	URI(path string) string
	// Close releases connections. Idempotent.
	Close() error
}

// FileInfo describes one entry.
type FileInfo struct {
	Name    string // base name
	Size    int64
	Dir     bool
	ModTime time.Time
}

// Errors every implementation maps its failures onto, so callers decide by
// kind and never by message text. Wrap them with %w and the path.
var (
	ErrNotFound    = errors.New("checkpoint storage: not found")
	ErrExists      = errors.New("checkpoint storage: already exists")
	ErrPermission  = errors.New("checkpoint storage: permission denied")
	ErrUnavailable = errors.New("checkpoint storage: unavailable")
	// ErrCorrupt: a file exists but fails its size or checksum check, or
	// does not decode.
	ErrCorrupt = errors.New("checkpoint: corrupt")
)
