// Package kafka is weir's Kafka connector (IBM/sarama): a source that reads a
// topic with positions kept in weir's checkpoints, a sink that writes at
// least once or exactly once (two-phase commit over Kafka transactions), the
// submit-time check of exactly-once timeouts (CheckJob), the dead_letter
// error policy, and small topic tools.
//
// # Source
//
// Partition assignment. There is no consumer group and nothing is committed
// to Kafka. Subtask i of n reads exactly the partitions p with p % n == i,
// so every partition is read by one subtask and the assignment is the same
// on every restart. A subtask with no partition marks itself idle (so it does
// not hold back downstream watermarks) and waits for cancellation; in bounded
// mode it ends at once. Partitions added to the topic while the job runs are
// not picked up until the job restarts.
//
// Positions. Run resolves a concrete start offset for each of its
// partitions before reading: the offset given by SetStartOffsets (from a
// checkpoint), else the earliest offset or, for start_from latest, the end
// (the last stable offset under read_committed). A checkpointed offset
// before the log start (deleted by retention) or past the end (topic
// recreated) fails the task instead of silently skipping or re-reading data.
// Offsets returns the next offset per partition, one past the last record
// emitted or handled by the error policy.
//
// Checkpoints. The source is a dataflow.Snapshotter: its state is, per
// partition it reads, the next offset and the largest event time seen
// (versioned encoding, see Snapshot). When out offers a checkpoint lock
// (CheckpointLock() sync.Locker, as the task runtime's SourceOutput does),
// the source holds it around each record, from counting its offset to
// Emit returning, and around watermark changes: the task snapshots under
// that lock, so a barrier falls between two records and the record being
// emitted is before it. Restore keeps from all given states the partitions
// p % n == i, so restoring with a different parallelism works when given
// every old subtask's state; it seeds the start offsets and each
// partition's largest event time (watermarks do not go back). Partitions
// without a restored offset start per start_from.
//
// Caller's duties, step by step:
//
//  1. NewSource(node, ctx) checks the settings and compiles the event-time
//     expression; it does not connect.
//  2. On restore, Restore(states) (or SetStartOffsets(offsets)).
//  3. Open(ctx), then Run(ctx, out) on the source goroutine. Run connects
//     (retrying for up to 10s; then an error wrapping ErrBrokersUnreachable or
//     ErrTopicNotFound that names the brokers and the topic), reads, and
//     returns nil when ctx is cancelled or a bounded read is complete.
//  4. On a barrier, under out's checkpoint lock, call Snapshot.
//  5. Close after Run has returned.
//
// Reading. One sarama partition consumer per partition; Run fans them in on
// its own goroutine, draining what each has buffered in turn (at most 256
// messages before moving to the next partition) and blocking in one select
// over all of them only when nothing is buffered, so records cost no extra
// goroutine hop. Isolation is read_committed by default: records of aborted
// transactions are never emitted, and records of open transactions are
// emitted once they commit.
//
// Bounded mode reads each partition up to the end offset listed when Run
// starts (the last stable offset under read_committed) and returns nil when
// all are done. sarama does not expose its fetch position, so a partition
// whose remaining offsets hold nothing visible (transaction markers, aborted
// records) is taken as done when it has had a fetch response beyond the end
// and then nothing for a second.
//
// A broker that stays unreachable while running (an unbroken streak of
// fetch errors for 60s) fails the task with ErrBrokersUnreachable, naming the
// topic, partition, offset and brokers, so the job restarts instead of
// stalling silently.
//
// Decoding. format json: each message must be one JSON object; integers
// become int64 and other numbers float64. format raw: the value as a string
// in field "value". Each record's Origin is the source node, topic, partition
// and offset.
//
// Bad records. A message that fails to decode, or whose event time cannot be
// evaluated or is not a number (epoch milliseconds), goes to the node's error
// policy (ctx.OnError) with the raw message value: fail (default) fails the
// task with the topic, partition and offset in the message; skip drops and
// counts it; dead_letter (NewDeadLetter) writes the message's key, value and
// headers exactly as read to the dead-letter topic, followed by the headers
// weir.error (the reason), weir.node and weir.origin, and waits for the
// acknowledgement — if that write fails, the task fails, so no record is
// silently lost. Every record keeps its message in Record.Raw, so a record
// that fails later in the same task (an expression, the sink's encoding)
// is dead-lettered as that message too; one without (a window's result, or
// a record that came over the network) is written as its fields in JSON.
//
// Watermarks. With event_time, each record's time is the field expression's
// value. The source keeps one eventtime.Tracker over its partitions: a
// partition's watermark is the largest event time seen on it minus
// max_out_of_orderness minus 1ms; the subtask's watermark is the minimum over
// the partitions that are not idle. Every watermark_interval the source emits
// the watermark if it moved forward. A partition without records for
// idle_timeout stops holding the watermark back; when all of the subtask's
// partitions are idle the source calls MarkIdle(true), and MarkIdle(false)
// before the next record it emits. A partition that has never had a record
// holds the watermark back until it turns idle.
//
// # Sink
//
// Delivery is at least once by default, exactly once with delivery
// exactly-once. Either way the sink encodes each record (json: the fields
// in the record's order, docs/spec.md "Field order", so equal records give
// equal bytes; raw: field "value"),
// sets the key from the key expression (strings as they are, numbers and
// booleans as text, anything else as JSON) and picks the partition by
// sarama's hash of the key (random without a key). A record that cannot be
// encoded (for example a NaN number) goes to the node's error policy.
//
// At least once: messages go to a sarama async producer with acks=all and
// idempotence (ordered, no duplicates from the producer's own retries),
// batching up to 512 KiB or 5ms. Flush(ctx) returns once every message
// handed over so far is acknowledged; Snapshot calls it on every checkpoint
// barrier before the subtask acknowledges the checkpoint (and returns no
// state), so everything before a completed checkpoint is in Kafka. Records
// replayed after a restart are written again: duplicates are possible,
// losses are not. A failed delivery is returned by the next Process or
// Flush (and by Close) as an error wrapping ErrDelivery that names the
// topic; it fails the task.
//
// # Exactly-once sink
//
// Two-phase commit over Kafka transactions, one per checkpoint interval,
// driven with sarama's public protocol types over *sarama.Broker (txn.go;
// docs/design/0003-exactly-once-sink.md says why): InitProducerID,
// AddPartitionsToTxn, Produce with transactional record batches, EndTxn.
//
// Ids. Subtask i of sink node N in job J writes transaction k under the
// transactional id weir-J-N-i-k. k starts at 0 and grows by one per
// transaction; a transaction begins (InitProducerID, which returns the
// producer id and epoch) with the first record after a barrier, so an
// interval without records has no transaction and nothing to commit.
//
// The caller's duties (the task runtime does them), step by step:
//
//  1. NewSink(node, ctx): ctx must carry the job id, the subtask and the
//     parallelism.
//  2. On restore, Restore(states) with the restored subtasks' states
//     (every old subtask's when the parallelism changed); it only decodes.
//  3. Open connects and recovers (below), before the first record.
//  4. Process writes into the open transaction, sending batches of 512 KiB
//     synchronously (acks=all); records stay invisible to read_committed
//     readers until their transaction commits.
//  5. On barrier n, Snapshot(n) is the pre-commit: it sends everything
//     buffered, keeps the transaction open and returns the state: the next
//     k and every pending transaction (id, producer id, epoch, checkpoint),
//     this one added for n. The subtask acknowledges n after that.
//  6. NotifyCheckpointComplete(n) commits (EndTxn) the pending transactions
//     of n and earlier, oldest first. A failure returns an error naming the
//     transaction; the task fails, the transaction stays pending, and the
//     restore commits it.
//  7. Close: after the final watermark of a bounded input, it commits
//     everything (pending and open: no checkpoint will cover the tail; a
//     job failure after that replays the tail and writes it twice, see
//     docs/exactly-once.md); otherwise it aborts the open transaction and
//     leaves the pending ones to a restore.
//
// The pending list, the order of commits, the recommit on restore and the
// commit at the end of input are internal/twophase's Driver, which the
// SDK's transactional sinks run on too; the sink is its Participant.
//
// Recovery (Open), decided by planRecovery, a pure function of the restored
// states: the subtask takes the states of old subtasks j with j mod
// parallelism == its index. It commits every pending transaction in them
// (they belong to the restored, completed checkpoint), oldest checkpoint
// first, with EndTxn carrying the stored producer id and epoch; a repeated
// commit of a committed transaction succeeds, so committing what a
// notification already committed is safe. Then it aborts every transaction
// opened after the checkpoint: for each of this job's states, ids from its
// next k on, by InitProducerID on each id (which bumps the epoch, fencing
// the old producer and aborting its transaction) until the broker answers
// epoch 0 for an id it has never seen. Without a restored state of its own
// (a fresh job, or a restart before the first checkpoint completed) it
// scans its own ids from 0. A savepoint's pending transactions of another
// job are committed, but that job's ids are left alone.
//
// Failures. Coordinator moves, concurrent transactions and broken
// connections are retried (about 20 attempts with backoff); a produce is
// resent with the same sequence numbers, so the broker drops what it has.
// A commit the broker refuses because the epoch is gone (PRODUCER_FENCED,
// INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING: aborted after
// transaction_timeout, or the id taken over) wraps ErrTxnFenced and fails
// the task (on restore: the attempt). A commit without an answer wraps
// ErrTxnUnknownOutcome, which wraps twophase.ErrOutcomeUnknown: the driver
// commits the same transaction again with backoff, the task waiting (as
// backpressure), until an answer comes; only the task's cancellation ends
// that with the error. Both name the transaction and its checkpoint, never
// silent success: a fenced pending transaction is output a completed
// checkpoint promised and Kafka no longer has. CheckJob refuses, at submit,
// a transaction_timeout that does not outlast a checkpoint plus a restart,
// or exceeds the brokers' transaction.max.timeout.ms. A state that cannot
// be decoded wraps ErrBadSinkState. An at-least-once sink refuses a
// restored state with pending transactions (they would be lost).
//
// Readers must use read_committed. docs/exactly-once.md has the timeout
// arithmetic and what each failure does.
package kafka
