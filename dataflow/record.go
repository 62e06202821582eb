package dataflow

import "math"

// NoTime marks a record without an event time.
const NoTime int64 = math.MinInt64

// Record is one element of a data stream.
//
// Fields holds the record's value (see Fields for the value types). A
// record passed to an operator is owned by the caller: an operator that
// keeps it beyond the call must copy the struct; the Fields it holds is
// immutable and may be shared.
type Record struct {
	// Key is set by key_by and used by hash partitioning and keyed state.
	Key any
	// Time is the event time in epoch milliseconds, or NoTime.
	Time int64
	// Fields is the record's value.
	Fields Fields
	// Origin tells where the record was read, for error messages and dead
	// letters. Zero when unknown.
	Origin Origin
	// Raw is the message the record was decoded from, as its source read
	// it, so that a dead letter can carry the original bytes; nil when
	// unknown. It is opaque here: the Kafka source keeps its
	// *sarama.ConsumerMessage, which the Kafka dead-letter writer sends
	// back as it was. Copies of the record (what filter, map, key_by and
	// other per-record operators emit) keep it; a record made anew (a
	// window's result) has none, and Encode does not carry it to another
	// subtask.
	Raw any
	// SourceWatermark is the watermark of the source partition the record
	// was read from, as of this record (0: none). A window treats a record
	// as late against the larger of its own watermark and this one, so
	// whether a record is late depends only on the order of its own
	// partition — the same in every replay after a restore — and not on
	// how far other partitions have got (which varies with timing; compare
	// Kafka Streams' stream time). docs/spec.md, "Late records".
	SourceWatermark int64
}

// Origin is the position a record was read from.
type Origin struct {
	Source    string // node name of the source
	Topic     string
	Partition int32
	Offset    int64
}

// String renders the origin for error messages.
func (o Origin) String() string {
	if o.Topic != "" {
		return "topic " + o.Topic + " partition " + itoa(int64(o.Partition)) + " offset " + itoa(o.Offset)
	}
	if o.Source != "" {
		return "source " + o.Source + " record " + itoa(o.Offset)
	}
	return "unknown origin"
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	var b [20]byte
	i := len(b)
	for v != 0 {
		d := v % 10
		if d < 0 {
			d = -d
		}
		i--
		b[i] = byte('0' + d)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
