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

// Submitted is the answer to POST /api/v1/jobs.
type Submitted struct {
	ID string `json:"id"`
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
	Vertices     []Vertex   `json:"vertices"`
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
}

// Cancelled is the answer to POST /api/v1/jobs/{id}/cancel.
type Cancelled struct {
	ID    string `json:"id"`
	State string `json:"state"`
}
