// Package sdkeos is the acceptance test "exactly-once with user state" of
// the SDK (issue 12): weir's example operators written with the SDK,
// example.fraud (value state and event-time timers) and example.session
// (map state, a timer per session, sessions merging out of order), run in
// real weir processes built with `weir build --with` a module that imports
// them, reading a Kafka broker (weir dev kafka) and writing with the
// exactly-once Kafka sink, while workers are SIGKILLed; then the job is
// stopped with a savepoint and resumed at another parallelism. What a
// read_committed reader sees must equal a plain-Go model's output: nothing
// lost, nothing duplicated, nothing else.
package sdkeos
