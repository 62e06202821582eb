package dataflow

// Kind says what a stream element is.
type Kind uint8

const (
	// KindRecord is a data record.
	KindRecord Kind = iota + 1
	// KindWatermark promises that no record with an earlier event time follows
	// on this channel (records that do are late).
	KindWatermark
	// KindBarrier separates the records before checkpoint n from those after.
	KindBarrier
	// KindIdle marks the channel idle (Idle true) or active again (Idle false).
	// An idle channel does not hold back the combined watermark.
	KindIdle
	// KindEndOfStream: nothing more follows on this channel.
	KindEndOfStream
)

// MaxWatermark is the watermark emitted at the end of a bounded stream: it
// fires every pending event-time window.
const MaxWatermark int64 = 1<<63 - 1

// Barrier is a checkpoint barrier.
type Barrier struct {
	ID        int64
	Timestamp int64 // trigger time, epoch ms
	Savepoint bool
	// Stop asks sources to end after this barrier (stop with savepoint).
	Stop bool
	// EndOfInput: every source upstream had ended its input before this
	// barrier (a task aligning it ands its inputs' flags). A checkpoint
	// every subtask took with it is the job's final one.
	EndOfInput bool
}

// Element is one item of a stream as it travels between tasks, in order.
type Element struct {
	Kind      Kind
	Record    Record  // KindRecord
	Watermark int64   // KindWatermark
	Barrier   Barrier // KindBarrier
	Idle      bool    // KindIdle
}
