// Package netaddr turns listen addresses into addresses others can dial.
package netaddr

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Advertised makes a listen address one other hosts can dial: an
// unspecified host (0.0.0.0, ::, or none) becomes this machine's host name
// (127.0.0.1 when it has none).
func Advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil && host != "" || ip != nil && !ip.IsUnspecified() {
		return addr
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		host = h
	} else {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Concrete replaces port 0 by a port that is free now: a process that
// publishes where it listens (an etcd member, an HA coordinator) must know
// the port before it binds.
func Concrete(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	return FreePort(host)
}

// FreePort returns host:port with a port that is free now, chosen below the
// kernel's ephemeral port range when it can tell the range (Linux). A port
// the kernel hands out for port 0 comes from that range, which every
// outgoing connection on the machine draws from too: by the time the
// caller binds it, a client socket may hold it. Below the range only
// another listener can take it. Ports handed out by this process are not
// handed out again.
func FreePort(host string) (string, error) {
	if lo, ok := ephemeralLow(); ok && lo > minPort+1000 {
		for range 200 {
			p := minPort + rand.IntN(lo-minPort)
			if !claim(p) {
				continue
			}
			addr := net.JoinHostPort(host, strconv.Itoa(p))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				continue // taken by another listener
			}
			l.Close()
			return addr, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// minPort is the lowest port FreePort picks: above the well-known and most
// registered service ports.
const minPort = 20000

var (
	claimMu sync.Mutex
	claimed = map[int]bool{}
)

func claim(p int) bool {
	claimMu.Lock()
	defer claimMu.Unlock()
	if claimed[p] {
		return false
	}
	claimed[p] = true
	return true
}

// ephemeralLow is the low end of the kernel's ephemeral port range.
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, false
	}
	lo, err := strconv.Atoi(f[0])
	return lo, err == nil
}
