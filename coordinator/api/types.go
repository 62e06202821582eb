// Package api is the coordinator's REST API under /api/v1: its JSON types and
// a Go client. docs/rest.md documents every path.
package api

import "time"

// Overview is GET /api/v1/overview.
type Overview struct {
	Workers    int `json:"workers"`
	SlotsTotal int `json:"slots_total"`
	SlotsUsed  int `json:"slots_used"`
	SlotsFree  int `json:"slots_free"`
	// Jobs counts jobs by state; every state is present.
	Jobs map[string]int `json:"jobs"`
	// Coordinator is the coordinator answering (the leader, when several
	// share etcd: standbys redirect).
	Coordinator CoordinatorInfo `json:"coordinator"`
	// Insecure: something is served without protection: the control and
	// data planes without mutual TLS (no --tls-cert, or weir dev
	// --insecure), so any process that reaches them can register as a
	// worker, or the REST API without tokens (weir coordinator
	// --insecure). InsecureReasons says which.
	Insecure        bool     `json:"insecure"`
	InsecureReasons []string `json:"insecure_reasons,omitempty"`
}

// CoordinatorInfo says which coordinator answers and how it leads.
type CoordinatorInfo struct {
	// ID is its identity (its REST address with --etcd, else "").
	ID string `json:"id,omitempty"`
	// Role is "single" (no etcd) or "leader".
	Role string `json:"role"`
	// FencingToken is the leader's etcd election revision (0: single).
	FencingToken int64 `json:"fencing_token,omitempty"`
	// Version and GoVersion describe the coordinator's binary, as
	// `weir version` prints them, so a mixed-version cluster shows.
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
}

// Worker is one registered worker.
type Worker struct {
	ID            string    `json:"id"`
	DataAddr      string    `json:"data_addr"`
	HTTPAddr      string    `json:"http_addr"`
	Version       string    `json:"version,omitempty"`
	Slots         int       `json:"slots"`
	SlotsUsed     int       `json:"slots_used"`
	State         string    `json:"state"`
	RegisteredAt  time.Time `json:"registered_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// Memory as of the last heartbeat: the live heap after the last GC,
	// what the Go runtime holds, and the worker's limit (0: none).
	HeapLiveBytes    int64 `json:"heap_live_bytes"`
	MemoryBytes      int64 `json:"memory_bytes"`
	MemoryLimitBytes int64 `json:"memory_limit_bytes"`
	// GoVersion and Operators describe the worker's build: the Go release
	// and the user operators compiled in (docs/sdk-build.md).
	GoVersion string     `json:"go_version,omitempty"`
	Operators []Operator `json:"operators"`
	// Drain is set while the worker drains (State DRAINING).
	Drain *WorkerDrain `json:"drain,omitempty"`
}

// WorkerDrain is a draining worker's progress (docs/failover.md,
// "Draining a worker").
type WorkerDrain struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Waiting says which jobs have not moved yet and why (no room on the
	// other workers, a stop checkpoint that failed); "" while none waits.
	Waiting string `json:"waiting,omitempty"`
}

// Operator is a user operator a worker's binary carries.
type Operator struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Module  string `json:"module"`
	Version string `json:"version"`
}

// WorkerList is GET /api/v1/workers.
type WorkerList struct {
	Workers []Worker `json:"workers"`
}

// JobSummary is one row of GET /api/v1/jobs.
type JobSummary struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	State       string     `json:"state"`
	Attempt     int64      `json:"attempt"`
	Tasks       int        `json:"tasks"`
	SubmittedAt time.Time  `json:"submitted_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
}

// JobList is GET /api/v1/jobs, newest first.
type JobList struct {
	Jobs []JobSummary `json:"jobs"`
}

// DryRun is the answer to POST /api/v1/jobs?dry_run=true: the job passed
// every check a submission makes and was not submitted.
type DryRun struct {
	Name     string         `json:"name"`
	Vertices []DryRunVertex `json:"vertices"`
	// RestoresFrom is the savepoint's _metadata URI with from_savepoint.
	RestoresFrom string `json:"restores_from,omitempty"`
	// Warnings are what a submission would be warned about (Submitted).
	Warnings []string `json:"warnings,omitempty"`
}

// DryRunVertex is a vertex of the job graph a dry run built.
type DryRunVertex struct {
	ID          string   `json:"id"`
	Parallelism int      `json:"parallelism"`
	Nodes       []string `json:"nodes"`
}

// Submitted is the answer to POST /api/v1/jobs.
type Submitted struct {
	ID string `json:"id"`
	// Warnings are problems that do not refuse the job, such as a source
	// with more subtasks than its topic has partitions.
	Warnings []string `json:"warnings,omitempty"`
}

// Job is GET /api/v1/jobs/{id}.
type Job struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Attempt int64  `json:"attempt"`
	// Message says what the job waits for (SCHEDULING).
	Message string `json:"message,omitempty"`
	// FailureCause is the first failure (FAILING, FAILED) or why it was
	// cancelled.
	FailureCause string     `json:"failure_cause,omitempty"`
	SubmittedAt  time.Time  `json:"submitted_at"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
	// Restarts counts the failures the job recovered from or gave up on
	// (details: GET /api/v1/jobs/{id}/restarts).
	Restarts int `json:"restarts"`
	// LastFailure is the latest of those failures (nil: none), so a job
	// that restarts again and again shows why while it runs.
	LastFailure *LastFailure `json:"last_failure,omitempty"`
	Vertices    []Vertex     `json:"vertices"`
	// Warnings are problems a RUNNING job does not show by its state: a
	// source or sink that cannot reach its brokers, a worker near its
	// memory limit.
	Warnings []string `json:"warnings,omitempty"`
}

// LastFailure is a job's latest failure.
type LastFailure struct {
	Cause         string    `json:"cause"`
	FailedAttempt int64     `json:"failed_attempt"`
	DetectedAt    time.Time `json:"detected_at"`
}

// Vertex is one vertex of the job graph and its subtasks.
type Vertex struct {
	ID          string    `json:"id"`
	Parallelism int       `json:"parallelism"`
	Nodes       []string  `json:"nodes,omitempty"`
	Subtasks    []Subtask `json:"subtasks"`
}

// Subtask is one subtask of the current attempt.
type Subtask struct {
	Index           int    `json:"index"`
	Worker          string `json:"worker,omitempty"`
	State           string `json:"state"`
	Error           string `json:"error,omitempty"`
	RecordsIn       int64  `json:"records_in"`
	RecordsOut      int64  `json:"records_out"`
	BackpressuredMs int64  `json:"backpressured_ms"`
	// Links: each source's and sink's connectivity (as last reported).
	Links []Link `json:"links,omitempty"`
	// StateBytes: estimated keyed-state bytes per stateful node.
	StateBytes map[string]int64 `json:"state_bytes,omitempty"`
}

// Link is whether a source or sink reaches its outside system.
type Link struct {
	Node string `json:"node"`
	// Target names it: "kafka <brokers> topic <topic>".
	Target    string `json:"target"`
	Connected bool   `json:"connected"`
	// UnreachableSince is when the current failure streak began.
	UnreachableSince *time.Time `json:"unreachable_since,omitempty"`
	LastError        string     `json:"last_error,omitempty"`
}

// Cancelled is the answer to POST /api/v1/jobs/{id}/cancel.
type Cancelled struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// CheckpointCounts are a job's checkpoint totals since submission
// (savepoints included).
type CheckpointCounts struct {
	Triggered  int `json:"triggered"`
	InProgress int `json:"in_progress"`
	Completed  int `json:"completed"`
	Failed     int `json:"failed"`
}

// CheckpointConfig is the job's checkpoint settings.
type CheckpointConfig struct {
	// Enabled: periodic checkpoints are on (the spec has a checkpoint
	// block). Savepoints work either way.
	Enabled           bool   `json:"enabled"`
	IntervalMs        int64  `json:"interval_ms,omitempty"`
	TimeoutMs         int64  `json:"timeout_ms"`
	MinPauseMs        int64  `json:"min_pause_ms"`
	TolerableFailures int    `json:"tolerable_failures"`
	Retained          int    `json:"retained"`
	Storage           string `json:"storage"`
}

// CheckpointStats is one checkpoint or savepoint.
type CheckpointStats struct {
	ID        int64  `json:"id"`
	Status    string `json:"status"` // IN_PROGRESS, COMPLETED, FAILED
	Savepoint bool   `json:"savepoint"`
	Stop      bool   `json:"stop,omitempty"`
	// Final: the job's final checkpoint (every subtask took it after the
	// end of its input).
	Final   bool  `json:"final,omitempty"`
	Attempt int64 `json:"attempt"`
	// TriggerTime and EndTime (once ended); DurationMs from one to the
	// other.
	TriggerTime time.Time  `json:"trigger_time"`
	EndTime     *time.Time `json:"end_time,omitempty"`
	DurationMs  int64      `json:"duration_ms"`
	SizeBytes   int64      `json:"size_bytes"`
	// Acknowledged of Subtasks have acknowledged.
	Acknowledged int `json:"acknowledged"`
	Subtasks     int `json:"subtasks"`
	// SlowestSubtask acknowledged last, SlowestMs after the trigger.
	SlowestSubtask string `json:"slowest_subtask,omitempty"`
	SlowestMs      int64  `json:"slowest_ms"`
	MaxAlignmentMs int64  `json:"max_alignment_ms"`
	// FailureReason (DECLINED, TIMEOUT, JOB_STOPPED, COMMIT_FAILED) and
	// Failure (the message) are set when FAILED.
	FailureReason string `json:"failure_reason,omitempty"`
	Failure       string `json:"failure,omitempty"`
	// Location is the checkpoint's directory URI once COMPLETED.
	Location string `json:"location,omitempty"`
}

// SubtaskCheckpoint is one subtask's part in a checkpoint.
type SubtaskCheckpoint struct {
	Vertex       string     `json:"vertex"`
	Subtask      int        `json:"subtask"`
	Acknowledged bool       `json:"acknowledged"`
	AckTime      *time.Time `json:"ack_time,omitempty"`
	// AckMs is from the trigger to the acknowledgement.
	AckMs       int64 `json:"ack_ms"`
	SyncMs      int64 `json:"sync_ms"`
	AsyncMs     int64 `json:"async_ms"`
	AlignmentMs int64 `json:"alignment_ms"`
	Bytes       int64 `json:"bytes"`
}

// CheckpointDetail is GET /api/v1/jobs/{id}/checkpoints/{cid}.
type CheckpointDetail struct {
	CheckpointStats
	SubtaskStats []SubtaskCheckpoint `json:"subtask_stats"`
}

// RestoreInfo says what the current attempt restored from.
type RestoreInfo struct {
	Attempt      int64  `json:"attempt"`
	CheckpointID int64  `json:"checkpoint_id"`
	Location     string `json:"location"`
	// Fallback says why newer checkpoints were passed over.
	Fallback string `json:"fallback,omitempty"`
}

// Checkpoints is GET /api/v1/jobs/{id}/checkpoints.
type Checkpoints struct {
	Counts CheckpointCounts `json:"counts"`
	Config CheckpointConfig `json:"config"`
	// Latest is the latest completed checkpoint or savepoint.
	Latest *CheckpointStats `json:"latest,omitempty"`
	// LatestRestore is what the current attempt restored from.
	LatestRestore *RestoreInfo `json:"latest_restore,omitempty"`
	// History holds the last 100 checkpoints, newest first.
	History []CheckpointStats `json:"history"`
}

// Restart is one failure of a job and its recovery timeline.
type Restart struct {
	// Reason is "failure" or "drain" (the job moved off a draining
	// worker from a stop checkpoint; the restart strategy was not asked).
	Reason        string `json:"reason,omitempty"`
	FailedAttempt int64  `json:"failed_attempt"`
	Attempt       int64  `json:"attempt,omitempty"`
	Cause         string `json:"cause"`
	Task          string `json:"task,omitempty"`
	Worker        string `json:"worker,omitempty"`
	DelayMs       int64  `json:"delay_ms"`
	// GaveUp: the restart strategy refused; the job FAILED.
	GaveUp bool `json:"gave_up,omitempty"`
	// RestoredFrom is the checkpoint id (0: none), Location its _metadata.
	RestoredFrom int64      `json:"restored_from,omitempty"`
	Location     string     `json:"location,omitempty"`
	Fallback     string     `json:"fallback,omitempty"`
	DetectedAt   time.Time  `json:"detected_at"`
	CancelledAt  *time.Time `json:"cancelled_at,omitempty"`
	ScheduledAt  *time.Time `json:"scheduled_at,omitempty"`
	RestoredAt   *time.Time `json:"restored_at,omitempty"`
	RunningAt    *time.Time `json:"running_at,omitempty"`
}

// Restarts is GET /api/v1/jobs/{id}/restarts.
type Restarts struct {
	// Strategy describes the job's restart strategy.
	Strategy string    `json:"strategy"`
	Restarts []Restart `json:"restarts"`
}

// SavepointOptions is the body of POST /api/v1/jobs/{id}/savepoints.
type SavepointOptions struct {
	// Stop ends the job after the savepoint (stop with savepoint).
	Stop bool `json:"stop"`
}

// Savepoint is one savepoint request.
type Savepoint struct {
	RequestID    string     `json:"request_id"`
	Status       string     `json:"status"` // IN_PROGRESS, COMPLETED, FAILED
	Stop         bool       `json:"stop"`
	CheckpointID int64      `json:"checkpoint_id,omitempty"`
	Location     string     `json:"location,omitempty"`
	Failure      string     `json:"failure,omitempty"`
	RequestedAt  time.Time  `json:"requested_at"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
}

// SavepointList is GET /api/v1/jobs/{id}/savepoints, oldest first.
type SavepointList struct {
	Savepoints []Savepoint `json:"savepoints"`
}

// JobGraph is GET /api/v1/jobs/{id}/graph: the job's vertices with their
// counters summed over subtasks, and the edges between them.
type JobGraph struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Attempt int64  `json:"attempt"`
	// SampledAt is when the counters were read (coordinator clock); two
	// samples give rates.
	SampledAt time.Time     `json:"sampled_at"`
	Vertices  []GraphVertex `json:"vertices"`
	Edges     []GraphEdge   `json:"edges"`
}

// GraphVertex is one vertex: a chain of nodes run by Parallelism subtasks.
type GraphVertex struct {
	ID          string      `json:"id"`
	Parallelism int         `json:"parallelism"`
	Nodes       []GraphNode `json:"nodes"`
	// Counters summed over the vertex's subtasks of the current attempt, as
	// last reported.
	RecordsIn       int64 `json:"records_in"`
	RecordsOut      int64 `json:"records_out"`
	BackpressuredMs int64 `json:"backpressured_ms"`
	// BusyMs and IdleMs: time the subtasks spent processing, and waiting
	// for input; with BackpressuredMs they make up their running time, so
	// two samples give the share of time busy (the bottleneck is the
	// busiest vertex).
	BusyMs int64 `json:"busy_ms"`
	IdleMs int64 `json:"idle_ms"`
	// Watermark is the vertex's event-time watermark in ms since the epoch:
	// the least of its running subtasks' (nil while one has none yet).
	// EventTimeLagMs is SampledAt minus it.
	Watermark      *int64 `json:"watermark,omitempty"`
	EventTimeLagMs *int64 `json:"event_time_lag_ms,omitempty"`
	// States counts the vertex's subtasks by state.
	States map[string]int `json:"states"`
}

// GraphNode is one spec node chained into a vertex.
type GraphNode struct {
	Name string `json:"name"`
	// Kind is source, map, select, filter, flat_map, key_by, window, union
	// or sink.
	Kind string `json:"kind"`
	// Connector names a source's or sink's connector (kafka, datagen,
	// stdout, file, discard).
	Connector string `json:"connector,omitempty"`
}

// GraphEdge connects two vertices.
type GraphEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// FromNode is the node of From whose output the edge carries; Tag a
	// side output ("late").
	FromNode string `json:"from_node,omitempty"`
	Tag      string `json:"tag,omitempty"`
	// Partitioning is forward, hash, rebalance or broadcast.
	Partitioning string `json:"partitioning"`
}

// SubtaskInfo is one subtask of the current attempt with its counters.
type SubtaskInfo struct {
	Vertex          string `json:"vertex"`
	Index           int    `json:"index"`
	Parallelism     int    `json:"parallelism"`
	Worker          string `json:"worker,omitempty"`
	WorkerHTTPAddr  string `json:"worker_http_addr,omitempty"`
	State           string `json:"state"`
	Error           string `json:"error,omitempty"`
	RecordsIn       int64  `json:"records_in"`
	RecordsOut      int64  `json:"records_out"`
	BackpressuredMs int64  `json:"backpressured_ms"`
	BusyMs          int64  `json:"busy_ms"`
	IdleMs          int64  `json:"idle_ms"`
	// Watermark: the subtask's event-time watermark, ms (nil: none yet).
	Watermark      *int64 `json:"watermark,omitempty"`
	DroppedLate    int64  `json:"dropped_late"`
	SkippedInvalid int64  `json:"skipped_invalid"`
	DeadLettered   int64  `json:"dead_lettered"`
}

// SubtaskList is GET /api/v1/jobs/{id}/subtasks.
type SubtaskList struct {
	Attempt   int64         `json:"attempt"`
	SampledAt time.Time     `json:"sampled_at"`
	Subtasks  []SubtaskInfo `json:"subtasks"`
}

// KafkaLag is GET /api/v1/jobs/{id}/kafka: how far each Kafka source
// partition's checkpointed position is behind the broker's end.
type KafkaLag struct {
	// Basis is "checkpoint" when positions come from CheckpointID's
	// _metadata, "none" before the job has a completed checkpoint.
	Basis        string     `json:"basis"`
	CheckpointID int64      `json:"checkpoint_id,omitempty"`
	CheckpointAt *time.Time `json:"checkpoint_at,omitempty"`
	FetchedAt    time.Time  `json:"fetched_at"`
	// TotalLag sums every partition's lag that is known.
	TotalLag int64            `json:"total_lag"`
	Sources  []KafkaSourceLag `json:"sources"`
}

// KafkaSourceLag is one Kafka source node.
type KafkaSourceLag struct {
	Vertex      string   `json:"vertex"`
	Node        string   `json:"node"`
	Topic       string   `json:"topic"`
	Brokers     []string `json:"brokers"`
	Parallelism int      `json:"parallelism"`
	// Isolation is the source's isolation level (read_committed or
	// read_uncommitted).
	Isolation string `json:"isolation"`
	// Error says why the broker could not be asked (partitions are then
	// those of the checkpoint, without end offsets).
	Error      string         `json:"error,omitempty"`
	TotalLag   int64          `json:"total_lag"`
	Partitions []PartitionLag `json:"partitions"`
}

// PartitionLag is one partition of a Kafka source.
type PartitionLag struct {
	Partition int32 `json:"partition"`
	// Subtask is the source subtask that reads it.
	Subtask int `json:"subtask"`
	// Offset is the next offset to read as of the checkpoint (absent
	// before one).
	Offset *int64 `json:"offset,omitempty"`
	// EndOffset is the broker's end of the partition as the source reads
	// it: the last stable offset for read_committed sources, the high
	// watermark for read_uncommitted ones (absent when the broker did not
	// answer).
	EndOffset *int64 `json:"end_offset,omitempty"`
	// Lag is EndOffset - Offset, when both are known.
	Lag *int64 `json:"lag,omitempty"`
}
