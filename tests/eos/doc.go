// Package eos proves the exactly-once Kafka sink end to end with real weir
// processes: a broker, a coordinator and workers on 127.0.0.1 ports, the
// ip-visits job with delivery exactly-once, workers killed (SIGKILL, or a
// failpoint crash in a binary built with -tags failpoints) while events
// stream in, and weir verify (read_committed) finding every window exactly
// once.
package eos
