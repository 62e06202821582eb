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

// KindProcess is a keyed process function (a spec node process:).
const KindProcess Kind = "process"

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
	// New builds the operator of a node with a config Check accepted.
	New func(cfg spec.Config, ctx *dataflow.Context) (dataflow.Operator, error)
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
	if e.Check == nil || e.New == nil {
		return fmt.Errorf("operator %s: Check and New are required", e.ID)
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

// CheckJob checks every process node of a parsed job against the
// registry: the operator exists and accepts its config. It returns a
// spec.Errors with the paths of the problems, or nil.
func CheckJob(job *spec.Job) error {
	var errs spec.Errors
	for _, i := range job.ProcessNodes() {
		n := &job.Pipeline[i]
		p := fmt.Sprintf("pipeline[%d].process", i)
		e, ok := Lookup(n.Process.Operator)
		if !ok {
			errs = append(errs, &spec.FieldError{Path: p + ".operator", Msg: unknownMsg(n.Process.Operator)})
			continue
		}
		errs = append(errs, configErrors(p+".config", e.Check(n.Process.Config))...)
	}
	return errs.Err()
}

func unknownMsg(id string) string {
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
