// Package operator implements weir's built-in transforms: map, select,
// filter, flat_map, key_by, union and the keyed event-time window with its
// aggregates. New builds one from its spec node.
//
// Every operator compiles its expressions once, when it is built, and never
// mutates the records it is given: an operator that changes a record's
// fields emits a new map. A record that fails to evaluate goes to the node's
// error policy (Context.OnError, FailOnError when nil); an error the policy
// returns fails the task and names the node.
//
// The window follows Flink's EventTimeTrigger: a window [start,end) fires
// when the watermark reaches end-1 and emits one record per key, at time
// end-1; with allowed lateness its state is kept until the watermark reaches
// end-1+lateness and every record arriving meanwhile fires it again with the
// updated result. Its state is one hash map from (key, window end) to a slot
// of aggregate cells plus the window ends in order, so a record costs one
// map operation per window it belongs to and a watermark touches only what
// it fires or purges. Snapshots are grouped by key group (the format is in
// window_state.go) so a restore after rescaling reads only its own groups.
package operator
