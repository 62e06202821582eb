package hdfstest

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config configures a Server. The zero value is usable.
type Config struct {
	// BlockSize is the block size the namenode hands out in
	// getServerDefaults (default 1 MiB, small so that tests cross block
	// boundaries).
	BlockSize int64
	// ListingLimit is how many entries one getListing answer carries at most
	// (default 1000, as dfs.ls.limit); smaller values exercise the client's
	// paging.
	ListingLimit int
	// Owner and Group own the root directory (defaults "hdfs",
	// "supergroup"). Everything else is owned by the connection's user.
	Owner, Group string
	// NameNodes is how many namenode endpoints serve the one namespace
	// (default 1; 2 for an HA pair). Endpoint 0 starts active, the others
	// standby (SetStandby changes that).
	NameNodes int
}

func (c *Config) setDefaults() {
	if c.BlockSize <= 0 {
		c.BlockSize = 1 << 20
	}
	if c.ListingLimit <= 0 {
		c.ListingLimit = 1000
	}
	if c.Owner == "" {
		c.Owner = "hdfs"
	}
	if c.Group == "" {
		c.Group = "supergroup"
	}
	if c.NameNodes <= 0 {
		c.NameNodes = 1
	}
}

// namenode is one namenode endpoint.
type namenode struct {
	addr    string
	ln      net.Listener // nil while stopped
	standby bool
}

// Faults are the failures the server injects. Set them with SetFaults; they
// apply to requests that start afterwards (a write in progress sees a
// changed AckDelay or DropWriteAfter at its next packet).
type Faults struct {
	// DropWriteAfter makes the datanode close a WRITE_BLOCK connection,
	// without acknowledging, once a block would hold more than this many
	// bytes: the client sees its pipeline break in the middle of a block.
	// 0 disables it.
	DropWriteAfter int64
	// AckDelay delays every pipeline ack the datanode sends.
	AckDelay time.Duration
	// RPCDelay delays every namenode answer (a namenode that hangs: set it
	// beyond the client's timeout).
	RPCDelay time.Duration
	// DenyWrite lists path prefixes ("/weir/ro") under which the namenode
	// refuses mkdirs, create, rename and delete with an
	// AccessControlException.
	DenyWrite []string
}

// Server is an in-process NameNode and DataNode. Create it with Start or
// New; Close stops it.
type Server struct {
	cfg Config

	mu        sync.Mutex
	faults    Faults
	nns       []*namenode
	dnLn      net.Listener
	conns     map[net.Conn]int // open connections: the namenode index, -1 for the datanode
	closed    bool
	root      *inode
	blocks    map[uint64]*block
	nextBlock uint64
	nextFile  uint64
	calls     map[string]int
	drops     int
	acks      int
	protoErrs []string

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// Start starts a namenode and a datanode on loopback ports.
func Start(cfg Config) (*Server, error) {
	cfg.setDefaults()
	now := time.Now()
	s := &Server{
		cfg:       cfg,
		conns:     map[net.Conn]int{},
		blocks:    map[uint64]*block{},
		nextBlock: 1 << 30,
		nextFile:  16386, // the first inode id a real namenode hands out
		calls:     map[string]int{},
		done:      make(chan struct{}),
		root: &inode{dir: true, children: map[string]*inode{}, perm: 0o755, owner: cfg.Owner, group: cfg.Group,
			mtime: now, id: 16385},
	}
	for i := range cfg.NameNodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, nn := range s.nns {
				nn.ln.Close()
			}
			return nil, fmt.Errorf("hdfstest: namenode listen: %w", err)
		}
		s.nns = append(s.nns, &namenode{addr: ln.Addr().String(), ln: ln, standby: i > 0})
	}
	dn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		for _, nn := range s.nns {
			nn.ln.Close()
		}
		return nil, fmt.Errorf("hdfstest: datanode listen: %w", err)
	}
	s.dnLn = dn
	s.wg.Add(1 + len(s.nns))
	for i, nn := range s.nns {
		go s.accept(nn.ln, i)
	}
	go s.accept(dn, -1)
	return s, nil
}

// New starts a server for a test and stops it when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NameNodeAddr is the first namenode's host:port, stable across
// StopNameNode and StartNameNode.
func (s *Server) NameNodeAddr() string { return s.nns[0].addr }

// NameNodeAddrs are the addresses of every namenode endpoint
// (Config.NameNodes), comma-separated as in an hdfs:// URI.
func (s *Server) NameNodeAddrs() string {
	addrs := make([]string, len(s.nns))
	for i, nn := range s.nns {
		addrs[i] = nn.addr
	}
	return strings.Join(addrs, ",")
}

// SetStandby makes namenode i answer every call with StandbyException, as
// the standby of an HA pair does, or makes it active again. Several may be
// active at once (no fencing between them: they share one namespace).
func (s *Server) SetStandby(i int, standby bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nns[i].standby = standby
}

func (s *Server) isStandby(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nns[i].standby
}

// DataNodeAddr is the datanode's host:port.
func (s *Server) DataNodeAddr() string { return s.dnLn.Addr().String() }

// SetFaults replaces the injected faults; Faults{} clears them.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.faults.DenyWrite = append([]string(nil), f.DenyWrite...)
}

func (s *Server) currentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// StopNameNode takes every namenode down: their ports refuse connections
// and every open namenode connection is closed. The namespace is kept.
func (s *Server) StopNameNode() {
	for i := range s.nns {
		s.StopNameNodeAt(i)
	}
}

// StartNameNode brings every stopped namenode back on its address.
func (s *Server) StartNameNode() error {
	for i := range s.nns {
		if err := s.StartNameNodeAt(i); err != nil {
			return err
		}
	}
	return nil
}

// StopNameNodeAt takes namenode i down.
func (s *Server) StopNameNodeAt(i int) {
	s.mu.Lock()
	ln := s.nns[i].ln
	s.nns[i].ln = nil
	var open []net.Conn
	for c, nn := range s.conns {
		if nn == i {
			open = append(open, c)
		}
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range open {
		c.Close()
	}
}

// StartNameNodeAt brings stopped namenode i back on the same address.
func (s *Server) StartNameNodeAt(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("hdfstest: server closed")
	}
	nn := s.nns[i]
	if nn.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", nn.addr)
	if err != nil {
		return fmt.Errorf("hdfstest: namenode listen again on %s: %w", nn.addr, err)
	}
	nn.ln = ln
	s.wg.Add(1)
	go s.accept(ln, i)
	return nil
}

// Calls returns how many times each namenode method was called.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		m[k] = v
	}
	return m
}

// Stats are counters of what the datanode did.
type Stats struct {
	DroppedWrites int // WRITE_BLOCK connections closed by DropWriteAfter
	Acks          int // pipeline acks sent
}

// Stats returns the datanode counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{DroppedWrites: s.drops, Acks: s.acks}
}

// ProtocolErrors returns the wire protocol violations the server saw (bad
// frames, bad packets, checksum mismatches), oldest first. A conforming
// client causes none; injected faults are not protocol errors.
func (s *Server) ProtocolErrors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.protoErrs...)
}

func (s *Server) protocolError(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.protoErrs) < 100 {
		s.protoErrs = append(s.protoErrs, fmt.Sprintf(format, args...))
	}
}

// Files lists every file path with its length and whether it is complete
// (closed by its writer), sorted: a view for tests.
func (s *Server) Files() []FileStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []FileStatus
	var walk func(p string, n *inode)
	walk = func(p string, n *inode) {
		if !n.dir {
			out = append(out, FileStatus{Path: p, Length: n.length(), Complete: n.complete, Owner: n.owner})
			return
		}
		for name, c := range n.children {
			walk(p+"/"+name, c)
		}
	}
	walk("", s.root)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// FileStatus is one entry of Files.
type FileStatus struct {
	Path     string
	Length   int64
	Complete bool
	Owner    string
}

// Close stops both nodes, closes every connection and waits for every
// goroutine the server started. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for _, nn := range s.nns {
		if nn.ln != nil {
			nn.ln.Close()
			nn.ln = nil
		}
	}
	s.dnLn.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// accept serves connections of namenode nn, or of the datanode when nn is
// -1.
func (s *Server) accept(ln net.Listener, nn int) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Close or StopNameNode
		}
		s.mu.Lock()
		if s.closed || (nn >= 0 && s.nns[nn].ln != ln) {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = nn
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			if nn >= 0 {
				s.serveNameNode(c, nn)
			} else {
				s.serveDataNode(c)
			}
		}()
	}
}

// sleep waits d or until the server closes; false when it closed.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// datanodeID describes the one datanode in block locations.
func (s *Server) datanodePort() uint32 {
	_, port, _ := net.SplitHostPort(s.dnLn.Addr().String())
	p, _ := strconv.Atoi(port)
	return uint32(p)
}
