// Package worker is the weir worker process: it registers its slots with the
// coordinator over one control-plane Session, runs the subtasks deployed to
// it (package worker/task), serves the data-plane Exchange to other workers,
// and exposes /metrics and /healthz.
//
// The session loop, step by step:
//
//  1. Dial the coordinator; while it is unreachable, retry with exponential
//     backoff and log each failure.
//  2. Send Register (id, data address, slots); wait for Registered, which
//     carries the heartbeat interval.
//  3. Every interval send a Heartbeat with the status and counters of every
//     task; send a TaskStatus as soon as a task changes state.
//  4. On DeployTask: parse the spec, build the graph, run the subtask in its
//     own goroutine (with the job's checkpoint directory and, when set, the
//     checkpoint to restore from); report RUNNING, then FINISHED, FAILED (with the error
//     text) or CANCELED. On CancelTask: cancel that task's context.
//  5. On TriggerCheckpoint, NotifyCheckpointComplete and AbortCheckpoint:
//     post the command to the task's mailbox (task.Control), matched by
//     the full task id including the attempt. A trigger for a task that is
//     not running here is declined at once; other messages for it are
//     dropped. Tasks report CheckpointAck and CheckpointDecline through the
//     worker (task.Reporter); they go out before status changes, so a
//     stop-with-savepoint acknowledgement precedes FINISHED.
//  6. When the session breaks, cancel every task (the coordinator has
//     already failed their jobs), wait for them to stop, and go to 1.
package worker
