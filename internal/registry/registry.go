// Package registry holds the user operators compiled into this binary:
// the SDK (package sdk) adds them from init functions, the worker builds
// them by id, and the coordinator checks a job's process nodes against
// them when it is submitted. It is internal so that the only way in is the
// SDK's typed registration.
package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Kind of a registered component.
type Kind string

// Kinds of registered components: the spec field that names them.
const (
	// KindProcess is a keyed process function (a spec node process:).
	KindProcess Kind = "process"
	// KindSource is a source (a spec node source: {connector:}).
	KindSource Kind = "source"
	// KindSink is a sink (a spec node sink: {connector:}).
	KindSink Kind = "sink"
)

// Entry is one registered operator.
type Entry struct {
	ID   string
	Kind Kind
	// Package is the Go package that registered it; Module and Version
	// are its module as the binary's build info records it ("(devel)"
	// for the main module built from a checkout).
	Package, Module, Version string
	// Check decodes and validates a config. Its error is a ConfigErrors
	// (or any error, reported at the config's path).
	Check func(cfg spec.Config) error
	// New builds the operator of a process or sink node with a config
	// Check accepted.
	New func(cfg spec.Config, ctx *dataflow.Context) (dataflow.Operator, error)
	// NewSource builds the source of a source node (KindSource only)
	// from its spec (the config, and the event_time and schema that the
	// runtime applies as for the built-in sources).
	NewSource func(node *spec.Source, ctx *dataflow.Context) (dataflow.Source, error)
	// NeedsCheckpoints: the component commits with checkpoints (a
	// transactional sink), so a job without a checkpoint block, whose
	// output it would never commit, is refused.
	NeedsCheckpoints bool
}

// ConfigError is a problem with one field of an operator's config; Field
// is its path inside the config ("thresholds.high"; empty for the whole).
type ConfigError struct {
	Field string
	Msg   string
}

// Error renders the field and the message.
func (e *ConfigError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

var (
	mu      sync.RWMutex
	entries = map[string]Entry{}
)

// Register adds e. The id must be well formed and not taken.
func Register(e Entry) error {
	if !spec.OperatorIDRE.MatchString(e.ID) {
		return fmt.Errorf("operator id %q: want dot-separated lower-case names with a namespace first, such as acme.dedup", e.ID)
	}
	switch {
	case e.Check == nil:
		return fmt.Errorf("operator %s: Check is required", e.ID)
	case e.Kind == KindSource && e.NewSource == nil:
		return fmt.Errorf("operator %s: a source needs NewSource", e.ID)
	case e.Kind != KindSource && e.New == nil:
		return fmt.Errorf("operator %s: New is required", e.ID)
	}
	mu.Lock()
	defer mu.Unlock()
	if old, dup := entries[e.ID]; dup {
		return fmt.Errorf("operator %s is registered twice (by %s and %s)", e.ID, old.Package, e.Package)
	}
	entries[e.ID] = e
	return nil
}

// Lookup returns the operator registered as id.
func Lookup(id string) (Entry, bool) {
	mu.RLock()
	defer mu.RUnlock()
	e, ok := entries[id]
	return e, ok
}

// All returns every registered operator, by id.
func All() []Entry {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Unregister removes id; tests use it to clean up.
func Unregister(id string) {
	mu.Lock()
	defer mu.Unlock()
	delete(entries, id)
}

// CheckJob checks every node of a parsed job that names a registered
// component (process operators, source and sink connectors) against the
// registry: it exists, is of the node's kind and accepts its config. It
// returns a spec.Errors with the paths of the problems, or nil.
func CheckJob(job *spec.Job) error {
	var errs spec.Errors
	for _, u := range job.UserComponents() {
		e, ok := Lookup(u.ID)
		if !ok {
			errs = append(errs, &spec.FieldError{Path: u.IDPath(), Msg: UnknownOperator(u.ID)})
			continue
		}
		if string(e.Kind) != u.Kind {
			errs = append(errs, &spec.FieldError{Path: u.IDPath(), Msg: fmt.Sprintf("%s is a %s, not a %s", u.ID, kindName(e.Kind), kindName(Kind(u.Kind)))})
			continue
		}
		if e.NeedsCheckpoints {
			switch c := job.Checkpoint; {
			case c == nil:
				errs = append(errs, &spec.FieldError{Path: u.IDPath(), Msg: fmt.Sprintf("%s commits its output with checkpoints: the job needs a checkpoint block", u.ID)})
			case c.Mode != "" && c.Mode != spec.ModeExactlyOnce:
				// Unaligned barriers would let records after a
				// barrier into its transaction: replayed, they would
				// be written twice.
				errs = append(errs, &spec.FieldError{Path: u.IDPath(), Msg: fmt.Sprintf("%s writes exactly once: it needs checkpoint.mode %s (aligned barriers), got %s", u.ID, spec.ModeExactlyOnce, c.Mode)})
			}
		}
		errs = append(errs, configErrors(u.Path+".config", e.Check(u.Config))...)
	}
	return errs.Err()
}

func kindName(k Kind) string {
	switch k {
	case KindProcess:
		return "process operator"
	case KindSource:
		return "source connector"
	case KindSink:
		return "sink connector"
	}
	return string(k)
}

// UnknownOperator says that id is not registered, and what is.
func UnknownOperator(id string) string {
	var ids []string
	for _, e := range All() {
		ids = append(ids, e.ID)
	}
	if len(ids) == 0 {
		return fmt.Sprintf("no operator %q in this weir binary, which has no user operators (build one with them: docs/sdk.md)", id)
	}
	return fmt.Sprintf("no operator %q in this weir binary; it has %s", id, strings.Join(ids, ", "))
}

// configErrors turns a Check error into field errors under path.
func configErrors(path string, err error) spec.Errors {
	if err == nil {
		return nil
	}
	var out spec.Errors
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *ConfigError
		if errors.As(err, &ce) {
			p := path
			if ce.Field != "" {
				p += "." + ce.Field
			}
			out = append(out, &spec.FieldError{Path: p, Msg: ce.Msg})
			return
		}
		out = append(out, &spec.FieldError{Path: path, Msg: err.Error()})
	}
	walk(err)
	return out
}

// ParseSpec is spec.Parse followed by CheckJob: what the coordinator runs
// when a job is submitted, so that an unknown operator or a bad config is
// refused then, with its path, and not by every task after deployment.
func ParseSpec(data []byte) (*spec.Job, error) {
	job, err := spec.Parse(data)
	if err != nil {
		return nil, err
	}
	if err := CheckJob(job); err != nil {
		return nil, err
	}
	return job, nil
}
