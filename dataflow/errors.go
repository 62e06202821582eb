package dataflow

import "fmt"

// ErrorHandler applies a node's on_error policy to a record that failed to
// decode or evaluate.
type ErrorHandler interface {
	// Handle returns nil when the record was skipped or dead-lettered, and an
	// error that fails the task otherwise. raw is the record as it was read
	// (a Kafka message value) when known, else nil.
	Handle(r *Record, raw []byte, err error) error
}

// RecordError is a record that failed: where it came from, in which node,
// and why.
type RecordError struct {
	Node   string
	Origin Origin
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("node %s: record at %s: %v", e.Node, e.Origin, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// FailOnError is the default policy: the task fails with the record's origin
// and the reason.
type FailOnError struct{ Node string }

// Handle fails.
func (f FailOnError) Handle(r *Record, _ []byte, err error) error {
	return &RecordError{Node: f.Node, Origin: r.Origin, Err: err}
}

// SkipOnError drops the record and counts it.
type SkipOnError struct{ Counters *Counters }

// Handle counts and drops.
func (s SkipOnError) Handle(*Record, []byte, error) error {
	if s.Counters != nil {
		s.Counters.SkippedInvalid.Add(1)
	}
	return nil
}
