// Package accesslog is weir's correctness oracle: a deterministic web access
// log, the exact result the reference job must compute from it, and the
// check of a job's output against that result.
//
// # The reference job
//
// Read the log (from Kafka, or from the datagen source's access-log
// profile), event time from "ts" with max_out_of_orderness 5s, drop status
// 404, key by "ip", tumbling event-time windows (say 1m), aggregates
// count() and sum(bytes). Each result is one OutputRecord.
//
// # What the generator guarantees
//
// Event i is a pure function of (Seed, i) (math/rand/v2 PCG seeded from
// both), so the same config always gives the same log, any subset of
// indexes can be generated independently (datagen subtasks do), and
// different seeds give different logs.
//
//   - Addresses: NumIPs distinct ones, Zipf-distributed (s = 1.2): the ten
//     hottest get about half the traffic. Which ones are hot depends on the
//     seed.
//   - About 5% of events have status 404; bytes are uniform in 100..10000.
//   - Event time advances steadily: the base time of event i is
//     Start + i*1000/EventsPerSecond.
//   - About 5% of events are out of order: up to MaxDisorder (3 s) before
//     their base time. Every event that is not late is therefore at most
//     3 s behind the largest event time of any earlier event, in the whole
//     log and so in every partition and every subset of it: a watermark with
//     5 s of out-of-orderness never makes one of them late.
//   - About 0.1% of events, never within the first 10% of the log (the first
//     10000 events of an unbounded log), are late: exactly LateBy (10 min)
//     behind their base time. A correct job drops them, and the model leaves
//     them out.
//   - The partition of an event is Partition(ip, Partitions), a stable hash,
//     so each address's events are in one partition, in generated order.
//
// # The model and the verification rules
//
// Expected counts, per (ip, window start), the events that are neither 404
// nor late. A streaming job that has not ended fires a window only when its
// watermark passes the window's last millisecond, and its watermark is the
// minimum over partitions of (largest event time read − out-of-orderness −
// 1). After the job has read the whole log, that is at least the model's
// final watermark (the minimum over partitions that have events; empty
// partitions go idle in the job and do not hold it back). So:
//
//   - a window is due when window_end − 1 <= final watermark: the job must
//     have emitted it, exactly once, with exactly the model's count and
//     bytes (else it is Lost, Duplicated or Wrong);
//   - a window that is not due is pending: the job may not have fired it
//     yet (its watermark can also be ahead of the model's when partitions
//     went idle), so it may be absent (Pending); if present it must be exact,
//     because a window fires only when no in-time event for it can follow;
//   - any other output window is Unexpected.
//
// For a bounded job, end of stream fires every window: call
// SetFinalWatermark(math.MaxInt64) and every window is due.
//
// Late events are dropped only when the job's watermark has already passed
// their window when they arrive. Ten minutes is far beyond the watermark lag
// of a job that keeps up with the log, but a job that reads partitions (or
// subtasks) more than about 9 minutes of event time apart — 100k events at
// the default 200 events/s — may legitimately count one. Verify says so in
// its examples when a mismatch is exactly the window's late events.
//
// # Kafka
//
// Produce writes the log to a topic (idempotent producer, acks=all, each
// event to its own partition, optional rate limit); ReadOutputs reads a
// job's result topic with read_committed isolation and decodes it, returning
// records that do not decode separately (Malformed) so that a caller
// counts them as wrong (Result.AddMalformed).
package accesslog
