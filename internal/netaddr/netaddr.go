// Package netaddr turns listen addresses into addresses others can dial.
package netaddr

import (
	"net"
	"os"
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
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
