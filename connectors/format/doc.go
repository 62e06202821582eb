// Package format reads and writes record values in the Confluent wire
// format through a Confluent-compatible schema registry: Avro, Protobuf
// and JSON Schema.
//
// A framed value is the magic byte 0, the writer schema's id as 4 bytes
// big-endian, for Protobuf the message-index array (zig-zag varints: a
// count and that many indexes, or a single 0 for the first message), then
// the payload (see wire.go).
//
// A reader (Decoder) needs no schema of its own: it fetches the writer's
// schema by the id in each value, once per id (Registry caches it, and a
// Decoder keeps the compiled codec), and decodes the payload with it
// straight into a record's fields. So a producer that registers a new
// version with an added field makes that field appear in the records that
// carry the new id, while records of the old id keep the old fields.
//
// A writer (Encoder) registers its schema under its subject (or, given no
// schema, takes the subject's latest version) when it opens, and frames
// every value with that id.
//
// Errors: a value that cannot be decoded (no magic byte, a schema id the
// registry does not know, a payload that does not match its schema) is
// the record's fault and wraps ErrMalformed, so the source hands it to
// the job's on_error policy (fail, skip or dead letter). A registry that
// does not answer is retried for the retry budget and then reported with
// ErrRegistryUnavailable: the task fails and the job restarts, since
// every record after it would fail the same way. A registry that refuses
// the credentials wraps ErrRegistryRefused (unrecoverable).
package format
