// Package leakcheck fails a test binary when goroutines of the code under
// test outlive its tests: every Stop, Close and Terminate must wait for
// what it started. One TestMain per package:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m, "weir/coordinator.", "weir/worker.") }
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Wait is how long the check waits for goroutines to exit after the tests.
const Wait = 10 * time.Second

// Main runs the tests, then fails the run (exit 1) when a goroutine whose
// stack contains any of markers is still alive after Wait.
func Main(m *testing.M, markers ...string) {
	code := m.Run()
	if code == 0 {
		if leaked := Leaked(Wait, markers...); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// ignored are goroutines that live for the whole process by design.
var ignored = []string{
	"leakcheck.Leaked",
	"testing.(*M).Run", // the main test goroutine itself
	"rcrowley/go-metrics.(*meterArbiter)",
}

// Leaked waits up to wait for the goroutines matching markers to exit and
// returns the stacks of those left ("" when none).
func Leaked(wait time.Duration, markers ...string) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
	next:
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, ig := range ignored {
				if strings.Contains(g, ig) {
					continue next
				}
			}
			for _, mk := range markers {
				if strings.Contains(g, mk) {
					leaked = append(leaked, g)
					continue next
				}
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
