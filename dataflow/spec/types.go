// Package spec is the job spec: the YAML a user submits, its defaults and its
// validation. docs/spec.md documents every field.
package spec

// Job is a whole job spec.
type Job struct {
	Name string `yaml:"name,omitempty"`
	// Parallelism is the default parallelism of every node (default 1).
	Parallelism int `yaml:"parallelism,omitempty"`
	// MaxParallelism is the number of key groups (default 128); it bounds
	// rescaling and cannot change for a job restored from a snapshot.
	MaxParallelism int `yaml:"max_parallelism,omitempty"`
	// OnError is the default error policy of every node (default fail).
	OnError *ErrorPolicy `yaml:"on_error,omitempty"`
	// Checkpoint enables periodic checkpoints (absent: none; savepoints
	// still work). See checkpoint.go.
	Checkpoint *Checkpoint `yaml:"checkpoint,omitempty"`
	// Restart says whether and when the job restarts after a failure
	// (default: exponential backoff).
	Restart  *Restart `yaml:"restart,omitempty"`
	Pipeline []Node   `yaml:"pipeline,omitempty"`
}

// Node is one named step of the pipeline. Exactly one of the kind fields
// (Source, Map, Select, Filter, FlatMap, KeyBy, Window, Union, Process,
// Join, Sink) is set.
type Node struct {
	// Name is unique in the job (default "<kind>-<index>").
	Name string `yaml:"name,omitempty"`
	// Inputs are the names of the nodes this one reads; "node.tag" names a
	// side output. Default: the previous node in the pipeline (a join's:
	// join.left and join.right). Several inputs are unioned, except by a
	// join, which knows which side each record came from.
	Inputs []string `yaml:"inputs,omitempty"`
	// Parallelism overrides the job's default for this node.
	Parallelism int `yaml:"parallelism,omitempty"`
	// OnError overrides the job's error policy for this node.
	OnError *ErrorPolicy `yaml:"on_error,omitempty"`
	// Partition forces how this node's input is distributed: rebalance or
	// broadcast. Default: forward when the parallelism matches, hash after
	// key_by, else rebalance.
	Partition string `yaml:"partition,omitempty"`

	Source  *Source   `yaml:"source,omitempty"`
	Map     Fields    `yaml:"map,omitempty"`    // add or replace fields: name -> expression
	Select  Fields    `yaml:"select,omitempty"` // keep exactly these fields: name -> expression
	Filter  string    `yaml:"filter,omitempty"` // keep records for which the expression is true
	FlatMap *FlatMap  `yaml:"flat_map,omitempty"`
	KeyBy   *KeyBy    `yaml:"key_by,omitempty"`
	Window  *Window   `yaml:"window,omitempty"`
	Union   *struct{} `yaml:"union,omitempty"`   // pass-through; unions its inputs
	Process *Process  `yaml:"process,omitempty"` // a registered user operator (process.go)
	Dedup   *Dedup    `yaml:"dedup,omitempty"`   // first record per key within a bound (dedup.go)
	Running *Running  `yaml:"running,omitempty"` // a non-windowed aggregate per key (running.go)
	TopN    *TopN     `yaml:"top_n,omitempty"`   // the N first records per key and window (topn.go)
	Join    *Join     `yaml:"join,omitempty"`    // joins two key_by nodes (join.go)
	Sink    *Sink     `yaml:"sink,omitempty"`
}

// Field is one named expression. Fields keeps the order of the YAML mapping.
type Field struct {
	Name string
	Expr string
}

// Fields is an ordered mapping of field names to expressions.
type Fields []Field

// ErrorPolicy says what happens to a record that fails to decode or evaluate.
// In YAML either a scalar (fail, skip, dead_letter) or a mapping.
type ErrorPolicy struct {
	// Action is fail (the default: fail the job with the record's position
	// and the reason), skip (drop and count it) or dead_letter.
	Action string `yaml:"action,omitempty"`
	// Topic and Brokers name the dead-letter Kafka topic (dead_letter only).
	// The reason travels in the record header "weir.error".
	Topic   string   `yaml:"topic,omitempty"`
	Brokers []string `yaml:"brokers,omitempty"`
	// TLS and SASL secure the dead-letter producer's connection, as a
	// Kafka source's or sink's (kafkasec.go).
	TLS  *KafkaTLS  `yaml:"tls,omitempty"`
	SASL *KafkaSASL `yaml:"sasl,omitempty"`
}

// Error policy actions.
const (
	OnErrorFail       = "fail"
	OnErrorSkip       = "skip"
	OnErrorDeadLetter = "dead_letter"
)

// Source is exactly one connector: a built-in one or, with Connector, a
// registered one (docs/sdk.md).
type Source struct {
	Kafka   *KafkaSource   `yaml:"kafka,omitempty"`
	Datagen *DatagenSource `yaml:"datagen,omitempty"`
	// Connector is the id of a registered source connector; Config is its
	// configuration, which it validates when the job is submitted.
	Connector string `yaml:"connector,omitempty"`
	Config    Config `yaml:"config,omitempty"`
	// Schema optionally declares field types (string, int, float, bool,
	// list, map, any); expressions downstream are type-checked against it.
	Schema map[string]string `yaml:"schema,omitempty"`
	// EventTime assigns event time and watermarks at the source.
	EventTime *EventTime `yaml:"event_time,omitempty"`
}

// EventTime assigns each record's event time and generates watermarks.
type EventTime struct {
	// Field is an expression giving the event time in epoch milliseconds.
	Field string `yaml:"field,omitempty"`
	// MaxOutOfOrderness bounds how late a record may arrive behind the
	// largest event time seen on its partition (default 0).
	MaxOutOfOrderness Duration `yaml:"max_out_of_orderness,omitempty"`
	// IdleTimeout marks a partition idle when it has had no records for
	// this long, so it does not hold the watermark back (default 30s; 0
	// disables).
	IdleTimeout *Duration `yaml:"idle_timeout,omitempty"`
	// WatermarkInterval is how often watermarks are emitted (default 200ms).
	WatermarkInterval Duration `yaml:"watermark_interval,omitempty"`
}

// KafkaSource reads topics, assigning partitions to its subtasks itself.
type KafkaSource struct {
	Brokers []string `yaml:"brokers,omitempty"`
	Topic   string   `yaml:"topic,omitempty"`
	// Format is json (default), raw (the value as a string in field
	// "value"), or avro, protobuf or json_schema (Confluent wire format,
	// with SchemaRegistry).
	Format string `yaml:"format,omitempty"`
	// StartFrom is earliest (default) or latest.
	StartFrom string `yaml:"start_from,omitempty"`
	// Isolation is read_committed (default) or read_uncommitted.
	Isolation string `yaml:"isolation,omitempty"`
	// Bounded stops at the end offsets seen when the job starts.
	Bounded bool `yaml:"bounded,omitempty"`
	// Upsert reads the topic as a table's changelog, as Flink's
	// upsert-kafka does: the message key goes into field KeyField, and a
	// message with a null value (a tombstone) becomes a record of the key
	// and "__deleted": true (join.go, lookup joins).
	Upsert bool `yaml:"upsert,omitempty"`
	// KeyField is the field that receives the message key as a string
	// (upsert only; default "key").
	KeyField string `yaml:"key_field,omitempty"`
	// TLS and SASL secure the connection to the brokers (kafkasec.go).
	TLS  *KafkaTLS  `yaml:"tls,omitempty"`
	SASL *KafkaSASL `yaml:"sasl,omitempty"`
	// SchemaRegistry is the registry of the avro, protobuf and
	// json_schema formats (schemareg.go).
	SchemaRegistry *SchemaRegistry `yaml:"schema_registry,omitempty"`
}

// DatagenSource generates a deterministic stream from a seed.
type DatagenSource struct {
	// Profile is access-log (default; the records weir loadgen writes),
	// sequence ({"id": n, "ts": ...}) or nexmark (nexmark.go).
	Profile string `yaml:"profile,omitempty"`
	Seed    int64  `yaml:"seed,omitempty"`
	// Count is the number of records over all subtasks (0: unbounded).
	Count int64 `yaml:"count,omitempty"`
	// Rate is records per second over all subtasks (0: as fast as possible).
	Rate float64 `yaml:"rate,omitempty"`
	// Nexmark shapes profile nexmark (optional).
	Nexmark *Nexmark `yaml:"nexmark,omitempty"`
}

// FlatMap turns one record into zero or more.
type FlatMap struct {
	// Explode is an expression giving a list; one record per element.
	Explode string `yaml:"explode,omitempty"`
	// Split is an expression giving a string, split by Separator (default
	// any run of white space); one record per part.
	Split     string `yaml:"split,omitempty"`
	Separator string `yaml:"separator,omitempty"`
	// As is the field that receives the element (default "value").
	As string `yaml:"as,omitempty"`
}

// KeyBy partitions the stream by key. In YAML either an expression or a
// mapping {expr, as}.
type KeyBy struct {
	Expr string `yaml:"expr,omitempty"`
	// As is the field name the key has in window results (default: the
	// expression when it is a plain field name, else "key").
	As string `yaml:"as,omitempty"`
}

// Window groups keyed records into event-time windows and aggregates them.
type Window struct {
	// Tumbling is the size of tumbling windows.
	Tumbling Duration `yaml:"tumbling,omitempty"`
	// Sliding windows: Size and Slide.
	Sliding *Sliding `yaml:"sliding,omitempty"`
	// Session windows: a key's records less than Gap apart (event time)
	// share a window.
	Session *Session `yaml:"session,omitempty"`
	// AllowedLateness keeps a window's state this long after it fired;
	// records within it update the result (default 0).
	AllowedLateness Duration `yaml:"allowed_lateness,omitempty"`
	// Late is drop (default; counted) or side_output (to "<node>.late").
	Late string `yaml:"late,omitempty"`
	// Aggregates maps output field names to count(), sum(e), min(e),
	// max(e) or avg(e).
	Aggregates Fields `yaml:"aggregates,omitempty"`
	// Time is the time windows follow: event (the default: the records'
	// event time, fired by watermarks) or processing (the worker's clock
	// when a record arrives; tumbling only, no lateness).
	Time string `yaml:"time,omitempty"`
}

// Window times.
const (
	TimeEvent      = "event"
	TimeProcessing = "processing"
)

// Session is the shape of session windows: a record at t opens [t, t+Gap),
// and a key's windows that overlap or touch merge.
type Session struct {
	Gap Duration `yaml:"gap,omitempty"`
}

// Sliding is the shape of sliding windows.
type Sliding struct {
	Size  Duration `yaml:"size,omitempty"`
	Slide Duration `yaml:"slide,omitempty"`
}

// Sink is exactly one connector: a built-in one or, with Connector, a
// registered one (docs/sdk.md).
type Sink struct {
	Kafka  *KafkaSink  `yaml:"kafka,omitempty"`
	Stdout *StdoutSink `yaml:"stdout,omitempty"`
	File   *FileSink   `yaml:"file,omitempty"`
	// Discard drops every record (benchmarks).
	Discard *struct{} `yaml:"discard,omitempty"`
	// Connector is the id of a registered sink connector; Config is its
	// configuration, which it validates when the job is submitted.
	Connector string `yaml:"connector,omitempty"`
	Config    Config `yaml:"config,omitempty"`
}

// KafkaSink writes to a topic.
type KafkaSink struct {
	Brokers []string `yaml:"brokers,omitempty"`
	Topic   string   `yaml:"topic,omitempty"`
	// Format is json (default), raw (field "value" as the message), or
	// avro, protobuf or json_schema (Confluent wire format, with
	// SchemaRegistry).
	Format string `yaml:"format,omitempty"`
	// Key is an expression for the message key (default: none).
	Key string `yaml:"key,omitempty"`
	// Delivery is at-least-once (default) or exactly-once (Kafka
	// transactions committed when a checkpoint completes; needs a
	// checkpoint block with mode exactly_once).
	Delivery string `yaml:"delivery,omitempty"`
	// TransactionTimeout is the Kafka transaction timeout of an
	// exactly-once sink (default 15m; exactly-once only). It must exceed
	// the time a transaction can stay open before its checkpoint completes
	// or a restarted job commits it, and must not exceed the broker's
	// transaction.max.timeout.ms; both are checked at submit time.
	TransactionTimeout Duration `yaml:"transaction_timeout,omitempty"`
	// TLS and SASL secure the connection to the brokers (kafkasec.go).
	TLS  *KafkaTLS  `yaml:"tls,omitempty"`
	SASL *KafkaSASL `yaml:"sasl,omitempty"`
	// SchemaRegistry is the registry of the avro, protobuf and
	// json_schema formats (schemareg.go).
	SchemaRegistry *SchemaRegistry `yaml:"schema_registry,omitempty"`
}

// StdoutSink prints one record per line.
type StdoutSink struct {
	Format string `yaml:"format,omitempty"`
}

// FileSink writes one record per line. In a job with checkpoints Path is a
// directory of part files committed exactly once with the checkpoints;
// otherwise each subtask appends to Path, "<path>-<subtask>" when the
// parallelism is above 1 (docs/spec.md).
type FileSink struct {
	Path   string `yaml:"path,omitempty"`
	Format string `yaml:"format,omitempty"`
}
