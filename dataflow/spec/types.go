// Package spec is the job spec: the YAML a user submits, its defaults and its
// validation. docs/spec.md documents every field.
package spec

// Job is a whole job spec.
type Job struct {
	Name string `yaml:"name"`
	// Parallelism is the default parallelism of every node (default 1).
	Parallelism int `yaml:"parallelism"`
	// MaxParallelism is the number of key groups (default 128); it bounds
	// rescaling and cannot change for a job restored from a snapshot.
	MaxParallelism int `yaml:"max_parallelism"`
	// OnError is the default error policy of every node (default fail).
	OnError  *ErrorPolicy `yaml:"on_error"`
	Pipeline []Node       `yaml:"pipeline"`
}

// Node is one named step of the pipeline. Exactly one of the kind fields
// (Source, Map, Select, Filter, FlatMap, KeyBy, Window, Union, Sink) is set.
type Node struct {
	// Name is unique in the job (default "<kind>-<index>").
	Name string `yaml:"name"`
	// Inputs are the names of the nodes this one reads; "node.tag" names a
	// side output. Default: the previous node in the pipeline. Several
	// inputs are unioned.
	Inputs []string `yaml:"inputs"`
	// Parallelism overrides the job's default for this node.
	Parallelism int `yaml:"parallelism"`
	// OnError overrides the job's error policy for this node.
	OnError *ErrorPolicy `yaml:"on_error"`
	// Partition forces how this node's input is distributed: rebalance or
	// broadcast. Default: forward when the parallelism matches, hash after
	// key_by, else rebalance.
	Partition string `yaml:"partition"`

	Source  *Source   `yaml:"source"`
	Map     Fields    `yaml:"map"`    // add or replace fields: name -> expression
	Select  Fields    `yaml:"select"` // keep exactly these fields: name -> expression
	Filter  string    `yaml:"filter"` // keep records for which the expression is true
	FlatMap *FlatMap  `yaml:"flat_map"`
	KeyBy   *KeyBy    `yaml:"key_by"`
	Window  *Window   `yaml:"window"`
	Union   *struct{} `yaml:"union"` // pass-through; unions its inputs
	Sink    *Sink     `yaml:"sink"`
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
	Action string `yaml:"action"`
	// Topic and Brokers name the dead-letter Kafka topic (dead_letter only).
	// The reason travels in the record header "weir.error".
	Topic   string   `yaml:"topic"`
	Brokers []string `yaml:"brokers"`
}

// Error policy actions.
const (
	OnErrorFail       = "fail"
	OnErrorSkip       = "skip"
	OnErrorDeadLetter = "dead_letter"
)

// Source is exactly one connector.
type Source struct {
	Kafka   *KafkaSource   `yaml:"kafka"`
	Datagen *DatagenSource `yaml:"datagen"`
	// Schema optionally declares field types (string, int, float, bool,
	// list, map, any); expressions downstream are type-checked against it.
	Schema map[string]string `yaml:"schema"`
	// EventTime assigns event time and watermarks at the source.
	EventTime *EventTime `yaml:"event_time"`
}

// EventTime assigns each record's event time and generates watermarks.
type EventTime struct {
	// Field is an expression giving the event time in epoch milliseconds.
	Field string `yaml:"field"`
	// MaxOutOfOrderness bounds how late a record may arrive behind the
	// largest event time seen on its partition (default 0).
	MaxOutOfOrderness Duration `yaml:"max_out_of_orderness"`
	// IdleTimeout marks a partition idle when it has had no records for
	// this long, so it does not hold the watermark back (default 30s; 0
	// disables).
	IdleTimeout *Duration `yaml:"idle_timeout"`
	// WatermarkInterval is how often watermarks are emitted (default 200ms).
	WatermarkInterval Duration `yaml:"watermark_interval"`
}

// KafkaSource reads topics, assigning partitions to its subtasks itself.
type KafkaSource struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"`
	// Format is json (default) or raw (the value as a string in field "value").
	Format string `yaml:"format"`
	// StartFrom is earliest (default) or latest.
	StartFrom string `yaml:"start_from"`
	// Isolation is read_committed (default) or read_uncommitted.
	Isolation string `yaml:"isolation"`
	// Bounded stops at the end offsets seen when the job starts.
	Bounded bool `yaml:"bounded"`
}

// DatagenSource generates a deterministic stream from a seed.
type DatagenSource struct {
	// Profile is access-log (default; the records weir loadgen writes) or
	// sequence ({"id": n, "ts": ...}).
	Profile string `yaml:"profile"`
	Seed    int64  `yaml:"seed"`
	// Count is the number of records over all subtasks (0: unbounded).
	Count int64 `yaml:"count"`
	// Rate is records per second over all subtasks (0: as fast as possible).
	Rate float64 `yaml:"rate"`
}

// FlatMap turns one record into zero or more.
type FlatMap struct {
	// Explode is an expression giving a list; one record per element.
	Explode string `yaml:"explode"`
	// Split is an expression giving a string, split by Separator (default
	// any run of white space); one record per part.
	Split     string `yaml:"split"`
	Separator string `yaml:"separator"`
	// As is the field that receives the element (default "value").
	As string `yaml:"as"`
}

// KeyBy partitions the stream by key. In YAML either an expression or a
// mapping {expr, as}.
type KeyBy struct {
	Expr string `yaml:"expr"`
	// As is the field name the key has in window results (default: the
	// expression when it is a plain field name, else "key").
	As string `yaml:"as"`
}

// Window groups keyed records into event-time windows and aggregates them.
type Window struct {
	// Tumbling is the size of tumbling windows.
	Tumbling Duration `yaml:"tumbling"`
	// Sliding windows: Size and Slide.
	Sliding *Sliding `yaml:"sliding"`
	// AllowedLateness keeps a window's state this long after it fired;
	// records within it update the result (default 0).
	AllowedLateness Duration `yaml:"allowed_lateness"`
	// Late is drop (default; counted) or side_output (to "<node>.late").
	Late string `yaml:"late"`
	// Aggregates maps output field names to count(), sum(e), min(e),
	// max(e) or avg(e).
	Aggregates Fields `yaml:"aggregates"`
}

// Sliding is the shape of sliding windows.
type Sliding struct {
	Size  Duration `yaml:"size"`
	Slide Duration `yaml:"slide"`
}

// Sink is exactly one connector.
type Sink struct {
	Kafka  *KafkaSink  `yaml:"kafka"`
	Stdout *StdoutSink `yaml:"stdout"`
	File   *FileSink   `yaml:"file"`
	// Discard drops every record (benchmarks).
	Discard *struct{} `yaml:"discard"`
}

// KafkaSink writes to a topic.
type KafkaSink struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"`
	// Format is json (default) or raw (field "value" as the message).
	Format string `yaml:"format"`
	// Key is an expression for the message key (default: none).
	Key string `yaml:"key"`
	// Delivery is at-least-once (default).
	Delivery string `yaml:"delivery"`
}

// StdoutSink prints one record per line.
type StdoutSink struct {
	Format string `yaml:"format"`
}

// FileSink appends one record per line to a file; each subtask writes
// "<path>-<subtask>" when the parallelism is above 1.
type FileSink struct {
	Path   string `yaml:"path"`
	Format string `yaml:"format"`
}
