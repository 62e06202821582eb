// Package netproxy is a TCP proxy for tests that cut a process off from a
// server (etcd, a broker) and let it back in, without touching either.
package netproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a target until Cut.
type Proxy struct {
	l      net.Listener
	target string
	cutOff atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

// New listens on 127.0.0.1 and forwards to target; closed with the test.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.Cut(true) })
	go p.serve()
	return p
}

// Addr is where clients connect instead of the target.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

func (p *Proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.cutOff.Load() {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

// Cut drops every connection and refuses new ones (true), or lets new
// ones through again (false).
func (p *Proxy) Cut(on bool) {
	p.cutOff.Store(on)
	if !on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
