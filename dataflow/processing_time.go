package dataflow

// ProcessingTimeHandler is implemented by operators with processing-time
// timers (user operators, through the SDK). The task calls
// OnProcessingTime on its goroutine, between two input batches, once the
// wall clock has reached NextProcessingTime; it checks at least every
// ProcessingTimeTick while the operator runs, also when no input arrives.
type ProcessingTimeHandler interface {
	// NextProcessingTime returns the processing time (epoch ms) of the
	// operator's earliest timer, and false when it has none.
	NextProcessingTime() (int64, bool)
	// OnProcessingTime fires what is due at now (epoch ms), emitting
	// through out.
	OnProcessingTime(now int64, out Output) error
}

// ProcessingTimeTick is how often a task with a ProcessingTimeHandler
// looks at the clock when no input wakes it.
const ProcessingTimeTick = 10 // ms
