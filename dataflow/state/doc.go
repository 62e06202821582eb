// Package state is weir's keyed state backend: the state of one operator
// instance (one subtask of one node), scoped to the record key that is being
// processed, with timers and time-to-live, snapshotted grouped by key group
// so that a restore at another parallelism picks the key groups it owns.
//
// It is the one keyed-state machinery of weir: the public SDK
// (github.com/weir-stream/weir/sdk) wraps it in typed handles for user
// operators, and built-in keyed operators (joins, session windows,
// deduplication, the window operator) use it directly. Its Go API is
// internal to weir and may change between releases; the SDK is the
// promise. docs/design/0005-keyed-state.md explains the design.
//
// An operator's duties, step by step:
//
//  1. Create the backend with NewHeap, then Restore it (before Open) when
//     the task restores from a checkpoint. Restored state is kept in its
//     encoded form until the operator declares it.
//  2. Declare each state once, by name, with NewValue, NewMap or NewList
//     (a Descriptor: name, kind, TTL) and a Serializer per type. A state
//     restored under the same name is decoded then; a name restored with
//     another kind is an error.
//  3. Before touching state for a record or firing a timer, call
//     SetCurrentKey. Every access reads and writes the current key's state
//     in a namespace (an int64; 0 when the operator needs none, a window's
//     end for windows).
//  4. Register timers through Timers; call AdvanceWatermark when the input
//     watermark advances and AdvanceProcessingTime when the clock does.
//     Both fire the timers that are due in (time, key, namespace) order,
//     with the timer's key current.
//  5. On a barrier call Snapshot. On every record, Cleanup(n) drops a few
//     expired entries.
//
// A Backend is not safe for concurrent use: it lives on the task goroutine.
package state
