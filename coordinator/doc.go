// Package coordinator is the weir coordinator: it registers workers over the
// control-plane Session stream, places jobs on their slots, drives every job
// through its lifecycle (package lifecycle) and serves the REST API
// (package api, docs/rest.md) and /metrics.
//
// Structure: the job state machine (lifecycle), the scheduler, the
// checkpoint tracker (checkpointing) and the restart strategies (restart)
// are pure; this package is their driver: it carries their actions out over
// the worker sessions and the checkpoint storage (checkpoints.go, the
// checkpoint coordinator's duties of checkpoint/doc.go; failover.go, the
// choice of the checkpoint to restore). docs/failover.md is the operator's
// view. All mutable state (worker registry, jobs) lives behind one
// mutex. Each worker session owns its gRPC stream: a receive loop feeding
// events in and a send loop draining the worker's outbound queue, so the
// driver never blocks on the network. A ticker on the injected clock checks
// heartbeat and scheduling timeouts.
package coordinator
