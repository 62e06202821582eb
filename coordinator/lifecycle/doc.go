// Package lifecycle is the job state machine: a pure function of events
// (placement found, task status, worker lost, cancel request, clock tick) to
// a new state and the actions the driver must carry out (deploy or cancel a
// task). It starts no goroutines and does no I/O, so every transition is
// testable by table.
//
// The caller's duties:
//
//  1. Create a Job with New and feed it Schedule once.
//  2. While the job is SCHEDULING, run the scheduler whenever slots may
//     have changed (worker registered, tasks ended, clock tick) and feed
//     Placed or NoSlots with the result.
//  3. Carry out every returned Action in order: DeployTask or CancelTask to
//     the named worker. An action that cannot be delivered is a lost worker:
//     feed WorkerLost.
//  4. Feed every task status report (TaskUpdate), every lost worker
//     (WorkerLost), every user cancel (Cancel) and periodic Ticks.
//
// FAILING sits between a failure and FAILED or RESTARTING: the job's other
// tasks are being cancelled, and their slots are not free until they report
// back or their worker is gone. Then the job's restart strategy (package
// restart; none set means never) decides: RESTARTING until the delay has
// passed (fed as Ticks), then SCHEDULING with every task pending; the next
// placement is the next attempt. Each failure is recorded in Restarts with
// its timeline: detected, cancelled, scheduled, restored (every task RUNNING
// again), running (the first checkpoint after the restore completed, fed as
// CheckpointCompleted; at once when checkpointing is off).
//
// Allowed state changes are listed in one table, transitions.go; Job.set
// refuses anything else, so a bug surfaces as an error instead of a job in an
// impossible state.
package lifecycle
