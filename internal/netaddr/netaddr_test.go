package netaddr

import (
	"net"
	"os"
	"strconv"
	"testing"
)

func TestAdvertised(t *testing.T) {
	host, _ := os.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	for in, want := range map[string]string{
		"127.0.0.1:80":  "127.0.0.1:80",
		"example.org:1": "example.org:1",
		"0.0.0.0:7071":  net.JoinHostPort(host, "7071"),
		"[::]:7071":     net.JoinHostPort(host, "7071"),
		":7071":         net.JoinHostPort(host, "7071"),
		"no port":       "no port",
	} {
		if got := Advertised(in); got != want {
			t.Errorf("Advertised(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConcrete(t *testing.T) {
	if got, err := Concrete("127.0.0.1:1234"); err != nil || got != "127.0.0.1:1234" {
		t.Fatalf("%q %v", got, err)
	}
	got, err := Concrete("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(got); port == "0" || port == "" {
		t.Fatalf("still port 0: %q", got)
	}
	if _, err := Concrete("nonsense"); err == nil {
		t.Fatal("accepted an address without a port")
	}
}

// FreePort hands out bindable ports, below the kernel's ephemeral range
// when it knows it, and never the same one twice in a process.
func TestFreePort(t *testing.T) {
	lo, known := ephemeralLow()
	seen := map[string]bool{}
	for range 50 {
		addr, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		if known && lo > minPort+1000 && (p < minPort || p >= lo) {
			t.Fatalf("port %d outside [%d, %d)", p, minPort, lo)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is not free: %v", addr, err)
		}
		l.Close()
	}
}
