// Package logging builds a process's slog logger: text or JSON lines,
// each attribute key at most once per line.
//
// Loggers are derived in layers (a worker adds its id, a task its job and
// subtask, an operator its node), and layers repeat what an outer one has
// already said: left alone, a line would carry "subtask=1 … subtask=1", and
// a JSON line would hold duplicate keys, which many log pipelines reject or
// resolve arbitrarily. The first value given for a key, the outermost
// logger's, is kept.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// Formats are the values of --log-format.
var Formats = []string{"text", "json"}

// New returns a logger writing lines of format (text or json) at level
// (debug, info, warn, error) and above to w.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want %s", format, strings.Join(Formats, " or "))
	}
	return slog.New(Dedup(h)), nil
}

// Dedup wraps h so that a key already set, by a With of an outer logger or
// earlier in the same call, is dropped.
func Dedup(h slog.Handler) slog.Handler { return &dedup{inner: h, seen: map[string]bool{}} }

type dedup struct {
	inner slog.Handler
	// prefix is the open groups, "a.b." (keys in different groups differ).
	prefix string
	// seen holds prefix+key of every attribute the With chain set.
	seen map[string]bool
}

func (d *dedup) Enabled(ctx context.Context, l slog.Level) bool { return d.inner.Enabled(ctx, l) }

func (d *dedup) WithAttrs(as []slog.Attr) slog.Handler {
	seen := make(map[string]bool, len(d.seen)+len(as))
	for k := range d.seen {
		seen[k] = true
	}
	kept, _ := keep(as, d.prefix, seen)
	if len(kept) == 0 {
		return &dedup{inner: d.inner, prefix: d.prefix, seen: seen}
	}
	return &dedup{inner: d.inner.WithAttrs(kept), prefix: d.prefix, seen: seen}
}

func (d *dedup) WithGroup(name string) slog.Handler {
	if name == "" {
		return d
	}
	return &dedup{inner: d.inner.WithGroup(name), prefix: d.prefix + name + ".", seen: d.seen}
}

func (d *dedup) Handle(ctx context.Context, r slog.Record) error {
	as := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		as = append(as, a)
		return true
	})
	seen := make(map[string]bool, len(d.seen)+len(as))
	for k := range d.seen {
		seen[k] = true
	}
	kept, dropped := keep(as, d.prefix, seen)
	if !dropped {
		return d.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(kept...)
	return d.inner.Handle(ctx, out)
}

// keep returns the attributes whose keys seen does not hold yet, adds
// them to it, and says whether it dropped any. A group attribute with a
// key is one key; an inline group (empty key) spreads its members, which
// are checked one by one.
func keep(as []slog.Attr, prefix string, seen map[string]bool) (out []slog.Attr, dropped bool) {
	out = make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if a.Key == "" && a.Value.Kind() == slog.KindGroup {
			inner, d := keep(a.Value.Group(), prefix, seen)
			out, dropped = append(out, inner...), dropped || d
			continue
		}
		k := prefix + a.Key
		if seen[k] {
			dropped = true
			continue
		}
		seen[k] = true
		out = append(out, a)
	}
	return slices.Clip(out), dropped
}
