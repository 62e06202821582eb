package exchange

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(before, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLeaks waits until the goroutine count is back to the baseline and
// prints every goroutine's stack if it is not.
func checkLeaks(baseline int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("goroutine leak: %d goroutines, %d at start\n%s", n, baseline, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, fmt.Sprintf(format, args...))
		}
		time.Sleep(time.Millisecond)
	}
}

// serve registers x on a gRPC server on 127.0.0.1:0 and returns its
// address; the server and x are closed when the test ends.
func serve(t testing.TB, x *Exchange) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	x.Register(s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		x.Close()
		s.Stop()
		<-done
	})
	return lis.Addr().String()
}

func newExchange(t testing.TB, opts ...Option) *Exchange {
	t.Helper()
	x := New(nil, opts...)
	t.Cleanup(x.Close)
	return x
}

func errContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
