// Package sdkexamples holds example user operators written with the SDK
// (github.com/weir-stream/weir/sdk), each registered under the "example"
// namespace and tested (docs/sdk.md walks through them):
//
//   - example.dedup: forwards the first record of each key and drops the
//     repeats seen within a TTL (value state with a time to live);
//   - example.fraud: Flink's fraud-detection walkthrough: alerts when an
//     account's transaction under $1 is followed by one over $500 within
//     a minute (value state and an event-time timer);
//   - example.count_per_minute: counts each key's records per event-time
//     minute and emits the count when the watermark passes the minute's
//     end (map state and an event-time timer);
//   - example.session: per-key sessions closed after a gap of inactivity
//     (30 minutes by default), with their start, end, event count and the
//     sum of a field; sessions merge when out-of-order events bridge them
//     (map state and an event-time timer per session);
//   - example.sequence: a user source of the numbers 0, 1, 2, … split over
//     its subtasks, its position in checkpointed state;
//   - example.ledger: a user-written transactional sink that writes each
//     checkpoint interval to a staging file and commits it by rename.
//
// A weir binary contains them when something imports this package; the
// tests do.
package sdkexamples
