// Package e2e runs real weir processes on 127.0.0.1 ports: a broker, a
// coordinator and workers, started from the built binary, with the access
// log generator and verifier checking the output exactly.
package e2e
