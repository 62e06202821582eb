// Package coordinator is the weir coordinator: it registers workers over the
// control-plane Session stream, places jobs on their slots, drives every job
// through its lifecycle (package lifecycle) and serves the REST API
// (package api, docs/rest.md) and /metrics.
//
// Structure: the job state machine and the scheduler are pure; this package
// is their driver. All mutable state (worker registry, jobs) lives behind one
// mutex. Each worker session owns its gRPC stream: a receive loop feeding
// events in and a send loop draining the worker's outbound queue, so the
// driver never blocks on the network. A ticker on the injected clock checks
// heartbeat and scheduling timeouts.
package coordinator
