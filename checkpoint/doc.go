// Package checkpoint holds weir's checkpoint metadata, the storage it is
// written to (file:// and hdfs:// behind one interface), retention, and the
// offline inspector. This comment is the protocol: what each side must do,
// step by step. Aligned barriers, Chandy–Lamport style.
//
// # Terms
//
// A checkpoint n is a consistent cut through a running job: every source's
// position and every operator's state as of the same logical point, the
// barrier n. A savepoint is a checkpoint triggered by a user, written under
// savepoints/ and never deleted automatically. Storage layout:
//
//	<root>/<job-id>/chk-<n>/_metadata                 the commit point
//	<root>/<job-id>/chk-<n>/<vertex>-<subtask>-<node> one state file per operator
//	<root>/<job-id>/savepoints/sp-<n>/...             same layout
//	<root>/<job-id>/history/                          checkpoint and restart records
//
// # The coordinator's duties
//
//  1. Trigger: every interval (and not sooner than min_pause after the last
//     checkpoint ended; one checkpoint in flight at a time), take the next id
//     from a counter that only grows (ids are never reused, also not after an
//     aborted checkpoint or a restart) and send TriggerCheckpoint(n) to every
//     source subtask of the running attempt.
//  2. Collect: wait for a CheckpointAck(n) from every subtask of the job,
//     sources included. Acks for another attempt or an unknown n are
//     ignored. A CheckpointDecline(n), a task failure, or the timeout aborts
//     n: send AbortCheckpoint(n) to every subtask, delete chk-<n>, count a
//     failure. tolerable_failures consecutive failures (plus one) fail the
//     job (which the restart strategy may then restart).
//  3. Commit: write _metadata (job spec, every subtask's handles and figures)
//     to chk-<n>/_metadata.tmp, then rename it to _metadata. The rename is the
//     commit point: before it n does not exist, after it n is the latest
//     completed checkpoint, even if the coordinator dies the next instant.
//  4. Notify: send NotifyCheckpointComplete(n) to every subtask. This is when
//     sinks may make n's output visible. Notification is best-effort: a sink
//     that misses it commits on the next notification or on restore.
//  5. Retain: keep the last `retained` completed checkpoints (default 3);
//     delete older ones only after n is committed. Savepoints are never
//     deleted.
//  6. End of input: once every source subtask has reported the end of its
//     input (TaskStatus.end_of_input), trigger at once. A checkpoint (not a
//     savepoint) that every subtask acknowledged with end_of_input is the
//     final one: its NotifyCheckpointComplete says final, and none is
//     triggered after it. A source that still reports end_of_input after
//     that missed the notification and is sent it again.
//
// # A source subtask's duties
//
// On TriggerCheckpoint(n), between two records (never inside one): snapshot
// its position (Kafka: the next offset of every assigned partition, and the
// largest event time seen per partition so watermarks do not go back after a
// restore), snapshot every operator chained after it, emit barrier n on
// every output channel after the records that precede it, then persist and
// acknowledge as below. A source that is idle or blocked still takes part:
// the barrier does not wait for a record.
//
// At the end of its input (a bounded source) a source emits its final
// watermark, reports the end of its input, and keeps taking part in
// checkpoints with barriers marked end of input, until a final
// NotifyCheckpointComplete; only then does it end its stream. What the sinks
// wrote after their last checkpoint is so committed by a checkpoint, never
// on close, where a failure before the job finishes would replay it.
//
// # Every other subtask's duties
//
//  1. Alignment (exactly-once): when barrier n arrives on an input channel,
//     stop reading that channel. Records behind it belong after the cut.
//     When barrier n has arrived on every channel that has not ended, the
//     subtask is aligned. At-least-once mode does not block channels; the
//     subtask proceeds when the last barrier arrives, and records that
//     overtook it are replayed after a restore (duplicates, never losses).
//  2. Snapshot synchronously, on the task goroutine, every operator of the
//     chain (Snapshotter.Snapshot: a cheap capture that later processing
//     does not modify), then forward barrier n on every output channel and
//     unblock the inputs. Sinks flush what they buffered here (at-least-once)
//     or pre-commit their transaction (exactly-once).
//  3. Persist asynchronously while records keep flowing: write one state file
//     per operator under chk-<n>/, with its size and CRC-32C.
//  4. Acknowledge: CheckpointAck(n) with the handles and the figures (sync,
//     async and alignment durations, bytes). If anything fails, send
//     CheckpointDecline(n) with the reason instead; the job keeps running.
//  5. On NotifyCheckpointComplete(n), call NotifyCheckpointComplete on every
//     operator that implements dataflow.CheckpointListener.
//  6. An aligned barrier is marked end of input when the barrier on every
//     channel that has not ended is; the acknowledgement says so
//     (CheckpointAck.end_of_input).
//
// # Restore
//
// After any failure the coordinator cancels every subtask of the job, waits
// for them to stop, and redeploys the whole job with Restore{n, metadata
// URI} where n is the latest completed checkpoint. Each subtask reads
// _metadata, picks the state files of its own nodes (all subtasks' files of
// a node when the parallelism changed; keyed state then keeps only its key
// groups), verifies each file's size and CRC-32C, and calls Restore on every
// Snapshotter before the first record. A source restored this way seeks to
// the checkpointed offsets. A missing or corrupt file fails the subtask with
// ErrCorruptState; the coordinator then restores from the previous retained
// checkpoint and records why.
//
// # Files
//
// Each duty above has one function here, so both sides agree on names and
// formats (docs/checkpoints.md has the byte layout):
//
//   - storage: OpenStorage(uri); errors are ErrNotFound, ErrExists,
//     ErrPermission, ErrUnavailable (storage trouble: retry, the checkpoint
//     is not bad) and ErrCorrupt.
//   - names: CheckpointDir, SavepointDir, StateFileName.
//   - a subtask persists with WriteState and restores with ReadState, which
//     checks size and CRC-32C (a missing file is ErrNotFound, a damaged one
//     ErrCorrupt; both make the checkpoint unusable).
//   - the coordinator commits with WriteMetadata (refuses an existing
//     _metadata), deletes an aborted checkpoint with DeleteCheckpoint, keeps
//     the last K with Retain, and picks a restore point with ListCompleted,
//     ReadMetadata and ValidateForRestore.
//
// DeleteCheckpoint removes _metadata before anything else, so a deletion cut
// short leaves an incomplete checkpoint, never a completed one with missing
// files; Retain removes incomplete directories older than the newest
// completed checkpoint.
package checkpoint
