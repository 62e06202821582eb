// Package kafka is weir's Kafka connector (IBM/sarama): a source that reads a
// topic with positions kept in weir's checkpoints, an at-least-once sink, the
// dead_letter error policy, and small topic tools.
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
// counts it; dead_letter (NewDeadLetter) writes the raw bytes to the
// dead-letter topic with headers weir.error (the reason), weir.node and
// weir.origin, and waits for the acknowledgement — if that write fails, the
// task fails, so no record is silently lost.
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
// Delivery guarantee: at least once. The sink encodes each record (json: the
// fields with sorted keys, so equal records give equal bytes; raw: field
// "value"), sets the key from the key expression (strings as they are,
// numbers and booleans as text, anything else as JSON), and hands the message
// to a sarama async producer with acks=all and idempotence (ordered, no
// duplicates from the producer's own retries), batching up to 512 KiB or
// 5ms. Flush(ctx) returns once every message handed over so far is
// acknowledged; Snapshot calls it on every checkpoint barrier before the
// subtask acknowledges the checkpoint (and returns no state), so everything before a completed checkpoint
// is in Kafka. Records replayed after a restart are written again:
// duplicates are possible, losses are not. A failed delivery is returned by
// the next Process or Flush (and by Close) as an error wrapping ErrDelivery
// that names the topic; it fails the task. A record that cannot be encoded
// (for example a NaN number) goes to the node's error policy.
//
// Exactly-once delivery (Kafka transactions committed on checkpoint
// completion, see docs) is not implemented by this sink yet; NewSink refuses
// any delivery other than at-least-once.
package kafka
