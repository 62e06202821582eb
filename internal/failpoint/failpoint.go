// Package failpoint holds weir's named failpoints: places on the
// exactly-once path where a test can make the process crash or a step fail.
// They are compiled in only under the build tag failpoints
// (go build -tags failpoints); without it Inject is an empty function the
// compiler inlines away, so a normal build pays nothing.
//
// With the tag, the environment variable WEIR_FAILPOINTS arms failpoints
// when the process starts, as a list separated by ';':
//
//	WEIR_FAILPOINTS='kafka-sink-after-precommit=crash;kafka-sink-commit=error@3'
//
// An action is crash (the process exits at once with CrashExitCode, like a
// SIGKILL: nothing is flushed or closed), error (Inject returns an error
// wrapping ErrInjected) or delay:<duration> (Inject sleeps). A suffix @n
// fires on the n-th time the failpoint is reached only; without it, every
// time. Tests in the same process use Enable and Disable.
package failpoint

import "errors"

// Names of the failpoints. Each is reached at one step that matters for
// exactly-once delivery.
const (
	// KafkaSinkAfterPreCommit: the exactly-once Kafka sink has flushed and
	// recorded its transaction as pending (Snapshot), before the subtask
	// acknowledges the checkpoint.
	KafkaSinkAfterPreCommit = "kafka-sink-after-precommit"
	// KafkaSinkCommit: the sink is about to send EndTxn(commit) for a
	// pending transaction, on a checkpoint's completion or on restore.
	KafkaSinkCommit = "kafka-sink-commit"
	// CoordinatorAfterMetadataCommit: the coordinator has renamed a
	// checkpoint's _metadata into place (the checkpoint is complete)
	// before it notifies the subtasks.
	CoordinatorAfterMetadataCommit = "coordinator-after-metadata-commit"
	// TaskStateUpload: a subtask is writing its checkpoint state files,
	// before it acknowledges.
	TaskStateUpload = "task-state-upload"
)

// Names lists every failpoint.
var Names = []string{KafkaSinkAfterPreCommit, KafkaSinkCommit, CoordinatorAfterMetadataCommit, TaskStateUpload}

// CrashExitCode is the exit code of a crash failpoint.
const CrashExitCode = 86

// ErrInjected is wrapped by the error an error failpoint returns.
var ErrInjected = errors.New("failpoint: injected error")

// EnvVar arms failpoints at start (with the failpoints build tag).
const EnvVar = "WEIR_FAILPOINTS"
