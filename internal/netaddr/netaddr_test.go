package netaddr

import (
	"net"
	"os"
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
