// Package e2e runs real weir processes on 127.0.0.1 ports: a broker, a
// coordinator and workers, started from the built binary, with the access
// log generator and verifier checking the output exactly. The failover
// tests SIGKILL workers, damage checkpoint files and stop jobs with
// savepoints (docs/failover.md, "What the multi-process tests prove").
//
// Environment: WEIR_E2E_BIN runs a prebuilt binary instead of building
// ./cmd/weir; WEIR_E2E_EVENTS sets the event count of
// TestIPVisitsSurvivesWorkerKills (default 1,000,000). Each process's log is kept in tests/artifacts/<test>/.
package e2e
