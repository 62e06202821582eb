package command

import (
	"testing"
	"time"
)

func TestDevWorkerAddrs(t *testing.T) {
	for _, c := range []struct {
		base string
		n    int
		want string
		bad  bool
	}{
		{"127.0.0.1:0", 3, "127.0.0.1:0", false},
		{"127.0.0.1:7100", 0, "127.0.0.1:7100", false},
		{"127.0.0.1:7100", 2, "127.0.0.1:7102", false},
		{"[::1]:7100", 1, "[::1]:7101", false},
		{"127.0.0.1:65535", 1, "", true},
		{"127.0.0.1", 0, "", true},
		{"127.0.0.1:http", 0, "", true},
	} {
		got, err := nthAddr(c.base, c.n)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("nthAddr(%q, %d) = %q, %v; want %q, error %v", c.base, c.n, got, err, c.want, c.bad)
		}
	}
}

func TestDevRestartBackoff(t *testing.T) {
	d := time.Duration(0)
	var got []time.Duration
	for range 7 {
		d = nextBackoff(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff %v, want %v", got, want)
		}
	}
	if d := nextBackoff(30*time.Second, 2*time.Minute); d != time.Second {
		t.Fatalf("after a worker ran 2m the backoff is %s, want 1s", d)
	}
}
