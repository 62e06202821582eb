package lifecycle

import "fmt"

// State is a job's lifecycle state.
type State string

// Job states. A failure moves a deploying or running job to FAILING; once
// every subtask has stopped, the restart strategy picks RESTARTING (wait
// for the delay, then SCHEDULING again with the next attempt) or FAILED.
const (
	Created    State = "CREATED"
	Scheduling State = "SCHEDULING"
	Deploying  State = "DEPLOYING"
	Running    State = "RUNNING"
	Failing    State = "FAILING"
	Restarting State = "RESTARTING"
	Cancelling State = "CANCELLING"
	Finished   State = "FINISHED"
	Failed     State = "FAILED"
	Cancelled  State = "CANCELLED"
)

// States lists every state, in lifecycle order.
var States = []State{Created, Scheduling, Deploying, Running, Failing, Restarting, Cancelling, Finished, Failed, Cancelled}

// transitions is the one place that says which state changes are allowed.
var transitions = map[State][]State{
	Created:    {Scheduling, Cancelled},
	Scheduling: {Deploying, Failed, Cancelled},
	Deploying:  {Running, Failing, Failed, Cancelling},
	Running:    {Finished, Failing, Failed, Cancelling, Restarting}, // → RESTARTING: stopped for a drain
	Failing:    {Failed, Restarting},
	Restarting: {Scheduling, Failed, Cancelling},
	Cancelling: {Cancelled},
	Finished:   nil,
	Failed:     nil,
	Cancelled:  nil,
}

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Terminal reports whether s is final.
func (s State) Terminal() bool { return s == Finished || s == Failed || s == Cancelled }

// Cancellable reports whether a cancel request is accepted in s.
func (s State) Cancellable() bool {
	switch s {
	case Created, Scheduling, Deploying, Running, Restarting:
		return true
	}
	return false
}

// TransitionError is a state change the table does not allow.
type TransitionError struct{ From, To State }

func (e *TransitionError) Error() string {
	return fmt.Sprintf("lifecycle: transition %s → %s is not allowed", e.From, e.To)
}
