// Package sdk is weir's API for user code: keyed process functions in Go,
// compiled into the weir binary, with keyed state, timers, side outputs
// and metrics that are checkpointed, restored and rescaled like the
// built-in operators' state. docs/sdk.md is the guide; this package's API
// is a compatibility promise (see "Stability" there).
//
// # Writing an operator
//
// A ProcessFunction handles the records of a keyed stream, one key at a
// time:
//
//	type Dedup struct{ seen *sdk.Value[bool] }
//
//	func (d *Dedup) Open(ctx *sdk.OpenContext) (err error) {
//		d.seen, err = sdk.NewValue(ctx, sdk.ValueDescriptor[bool]{Name: "seen", TTL: sdk.TTL{Duration: time.Hour}})
//		return err
//	}
//
//	func (d *Dedup) ProcessElement(ctx *sdk.Context, in sdk.Record, out *sdk.Collector[sdk.Record]) error {
//		if seen, _, err := d.seen.Get(); err != nil || seen {
//			return err
//		}
//		if err := d.seen.Update(true); err != nil {
//			return err
//		}
//		return out.Emit(in)
//	}
//
//	func (d *Dedup) OnTimer(*sdk.Context, sdk.Timer, *sdk.Collector[sdk.Record]) error { return nil }
//
// and is registered by name from an init function, with a factory that
// takes the node's config:
//
//	func init() {
//		sdk.RegisterProcess("acme.dedup", func(struct{}) (sdk.ProcessFunction[sdk.Record, sdk.Record], error) {
//			return &Dedup{}, nil
//		})
//	}
//
// A job uses it after a key_by:
//
//	pipeline:
//	  # ... a source
//	  - key_by: id
//	  - process: {operator: acme.dedup}
//
// # Records
//
// Input and output types are Record (untyped fields) or structs whose
// exported fields map to record fields by their `weir` tag:
//
//	type Txn struct {
//		Account string  `weir:"account"`
//		Amount  float64 `weir:"amount"`
//		Note    string  `weir:"-"` // not a record field
//	}
//
// Field types are string, bool, the integer and float types, any, []any,
// []string and map[string]any. A missing or null field decodes as the
// zero value; a value of another type is an error for the node's
// on_error policy.
//
// # State and timers
//
// State is declared once in Open from a descriptor (NewValue, NewMap,
// NewList, NewReducing, NewAggregating) and then used in ProcessElement
// and OnTimer, where it reads and writes the current key's state. Each
// descriptor may carry a TTL. Timers are registered through
// Context.Timers: event-time timers fire in order as the watermark passes
// them, processing-time timers when the clock does; a key has at most one
// timer per time. State and timers are in every checkpoint and savepoint,
// grouped by key group, so a job restored at another parallelism keeps
// each key's state. What may change in a state's type between savepoints
// is in docs/sdk.md, "State evolution".
//
// # Sources and sinks
//
// A Source reads splits whose positions weir keeps in its checkpoints,
// registered with RegisterSource; a TransactionalSink writes exactly once
// by two-phase commit with the checkpoints (PreCommit at the barrier,
// Commit when the checkpoint completes, recommit and Recover on restore),
// registered with RegisterSink. A job names them as
// `source: {connector: <id>}` and `sink: {connector: <id>}`. The
// exactly-once Kafka sink runs on the same two-phase-commit lifecycle.
package sdk
