package sinks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Formats of the line sinks.
const (
	// FormatJSON writes the record's fields as one JSON object (the default).
	FormatJSON = "json"
	// FormatRaw writes field "value": a string as is, anything else as JSON.
	FormatRaw = "raw"
)

// stdoutFlushEvery bounds how long a printed line may sit in the buffer
// while records keep coming; watermarks and Close flush too.
const stdoutFlushEvery = 100 * time.Millisecond

// lineSink writes one line per record to a buffered writer.
type lineSink struct {
	node      string
	format    string
	what      string // "stdout" or the file path, for errors
	open      func() (io.Writer, io.Closer, error)
	w         *bufio.Writer
	closer    io.Closer
	line      []byte // a JSON line being written
	raw       bytes.Buffer
	onError   dataflow.ErrorHandler
	interval  time.Duration // 0: flush only when full, on watermarks and Close
	lastFlush time.Time
	closed    bool
}

func format(node *spec.Node, f string) (string, error) {
	switch f {
	case "", FormatJSON:
		return FormatJSON, nil
	case FormatRaw:
		return FormatRaw, nil
	}
	return "", fmt.Errorf("sink %s: unknown format %q (want json or raw)", node.Name, f)
}

// NewStdout builds a stdout sink.
func NewStdout(node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	return NewStdoutTo(os.Stdout, node, ctx)
}

// NewStdoutTo builds a stdout sink that writes to w (tests).
func NewStdoutTo(w io.Writer, node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	if node == nil || node.Sink == nil || node.Sink.Stdout == nil {
		return nil, errors.New("sinks: node has no stdout sink")
	}
	f, err := format(node, node.Sink.Stdout.Format)
	if err != nil {
		return nil, err
	}
	return &lineSink{
		node: node.Name, format: f, what: "stdout", onError: onError(node, ctx), interval: stdoutFlushEvery,
		open: func() (io.Writer, io.Closer, error) { return w, nil, nil },
	}, nil
}

// NewFile builds a file sink. In a job that takes checkpoints
// (ctx.Checkpointing) the path is a directory of part files committed with
// the checkpoints, exactly once (see the package doc). Otherwise it appends
// to the file, creating it and its directory when missing; with parallelism
// above 1 subtask i writes "<path>-<i>". Lines are buffered and flushed when
// the buffer fills, on watermarks, at savepoints and on Close.
func NewFile(node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	if node == nil || node.Sink == nil || node.Sink.File == nil {
		return nil, errors.New("sinks: node has no file sink")
	}
	fs := node.Sink.File
	if fs.Path == "" {
		return nil, fmt.Errorf("sink %s: file sink needs a path", node.Name)
	}
	f, err := format(node, fs.Format)
	if err != nil {
		return nil, err
	}
	if ctx != nil && ctx.Checkpointing {
		return newPartSink(&lineSink{node: node.Name, format: f, what: fs.Path, onError: onError(node, ctx)}, fs.Path, ctx), nil
	}
	path := fs.Path
	if ctx != nil && ctx.Parallelism > 1 {
		path += "-" + strconv.Itoa(ctx.Subtask)
	}
	return &fileSink{&lineSink{
		node: node.Name, format: f, what: path, onError: onError(node, ctx),
		open: func() (io.Writer, io.Closer, error) {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, nil, err
			}
			file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return nil, nil, err
			}
			return file, file, nil
		},
	}}, nil
}

// fileSink is the file sink of a job without checkpoints: at least once,
// appending to one file per subtask.
type fileSink struct{ *lineSink }

// Snapshot implements dataflow.Snapshotter: a savepoint flushes, so the
// file holds every record before its barrier. There is no state.
func (s *fileSink) Snapshot(int64) ([]byte, error) {
	if s.w == nil || s.closed {
		return nil, nil
	}
	return nil, s.flush()
}

// Restore implements dataflow.Snapshotter. A state with pre-committed part
// files (from a job with checkpoints) is refused: ignoring it would lose
// them.
func (s *fileSink) Restore(states [][]byte) error {
	for i, b := range states {
		st, err := decodePartState(b)
		if err != nil {
			return fmt.Errorf("sink %s: restored state %d: %w", s.node, i, err)
		}
		if len(st.Pending) > 0 {
			return fmt.Errorf("sink %s: the restored state has %d pre-committed part files of a file sink in a job with checkpoints (first: %s); restore into a job with a checkpoint block so that they are committed",
				s.node, len(st.Pending), st.Pending[0].Part)
		}
	}
	return nil
}

func onError(node *spec.Node, ctx *dataflow.Context) dataflow.ErrorHandler {
	if ctx != nil && ctx.OnError != nil {
		return ctx.OnError
	}
	return dataflow.FailOnError{Node: node.Name}
}

// Path returns where a file sink writes: the file (with the subtask
// suffix), or the directory of part files in a job with checkpoints.
func Path(op dataflow.Operator) string {
	switch s := op.(type) {
	case *fileSink:
		return s.what
	case *partSink:
		return s.dir
	}
	return ""
}

func (s *lineSink) Open(*dataflow.Context) error {
	if s.w != nil {
		return nil
	}
	w, c, err := s.open()
	if err != nil {
		return fmt.Errorf("sink %s: open %s: %w", s.node, s.what, err)
	}
	s.w = bufio.NewWriterSize(w, 64<<10)
	s.closer = c
	s.lastFlush = time.Now()
	return nil
}

func (s *lineSink) Process(r *dataflow.Record, _ dataflow.Output) error {
	if s.w == nil || s.closed {
		return fmt.Errorf("sink %s: record after close or before open", s.node)
	}
	if err := s.write(r); err != nil {
		return err
	}
	if s.interval > 0 {
		if now := time.Now(); now.Sub(s.lastFlush) >= s.interval {
			s.lastFlush = now
			return s.flush()
		}
	}
	return nil
}

// write writes r as one line; a record that cannot be encoded goes to the
// node's error policy.
func (s *lineSink) write(r *dataflow.Record) error {
	if err := s.writeLine(r); err != nil {
		var werr *writeError
		if errors.As(err, &werr) {
			return err
		}
		// The record cannot be written as asked: the node's policy decides.
		return s.onError.Handle(r, nil, err)
	}
	return nil
}

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func (s *lineSink) writeLine(r *dataflow.Record) error {
	if s.format == FormatJSON {
		// Encoded completely before writing, so a value that does not
		// encode writes nothing.
		b, err := dataflow.AppendJSON(s.line[:0], r.Fields)
		if err != nil {
			return fmt.Errorf("record does not encode as JSON: %w", err)
		}
		s.line = append(b, '\n')
		if _, err := s.w.Write(s.line); err != nil {
			return &writeError{fmt.Errorf("sink %s: write %s: %w", s.node, s.what, err)}
		}
		return nil
	}
	v, ok := r.Fields.Lookup("value")
	if !ok {
		return errors.New(`raw format: the record has no field "value"`)
	}
	if str, isStr := v.(string); isStr {
		_, err := s.w.WriteString(str)
		if err == nil {
			err = s.w.WriteByte('\n')
		}
		if err != nil {
			return &writeError{fmt.Errorf("sink %s: write %s: %w", s.node, s.what, err)}
		}
		return nil
	}
	s.raw.Reset()
	enc := json.NewEncoder(&s.raw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("raw format: field \"value\" does not encode as JSON: %w", err)
	}
	if _, err := s.w.Write(s.raw.Bytes()); err != nil {
		return &writeError{fmt.Errorf("sink %s: write %s: %w", s.node, s.what, err)}
	}
	return nil
}

func (s *lineSink) flush() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("sink %s: write %s: %w", s.node, s.what, err)
	}
	return nil
}

// ProcessWatermark flushes, so results fired by a watermark show up without
// waiting for more records.
func (s *lineSink) ProcessWatermark(wm int64, out dataflow.Output) error {
	if s.w != nil && !s.closed {
		if err := s.flush(); err != nil {
			return err
		}
		s.lastFlush = time.Now()
	}
	return out.EmitWatermark(wm)
}

// Close flushes and closes the file; calling it again does nothing.
func (s *lineSink) Close(dataflow.Output) error {
	if s.closed || s.w == nil {
		s.closed = true
		return nil
	}
	s.closed = true
	err := s.flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("sink %s: close %s: %w", s.node, s.what, cerr)
		}
	}
	return err
}

// Discard drops every record and counts them.
type Discard struct{ n atomic.Int64 }

// NewDiscard builds a discard sink.
func NewDiscard(node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	if node == nil || node.Sink == nil || node.Sink.Discard == nil {
		return nil, errors.New("sinks: node has no discard sink")
	}
	return &Discard{}, nil
}

// Count returns the number of records dropped so far; safe from any
// goroutine.
func (d *Discard) Count() int64 { return d.n.Load() }

func (d *Discard) Open(*dataflow.Context) error { return nil }

func (d *Discard) Process(*dataflow.Record, dataflow.Output) error {
	d.n.Add(1)
	return nil
}

func (d *Discard) Close(dataflow.Output) error { return nil }

var (
	_ dataflow.Operator         = (*lineSink)(nil)
	_ dataflow.WatermarkHandler = (*lineSink)(nil)
	_ dataflow.Operator         = (*Discard)(nil)
	_ dataflow.Snapshotter      = (*fileSink)(nil)
)
