package command

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDevSchemaRegistry: `weir dev schema-registry` serves the registry
// REST API that the Kafka connectors' registry client speaks, says where,
// and stops cleanly when cancelled.
func TestDevSchemaRegistry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	out := &lockedBuf{}
	g := &globals{stdout: out, stderr: out}
	c := newDevRegistryCommand(g)
	c.SetArgs([]string{"--addr", addr})
	c.SilenceUsage, c.SilenceErrors = true, true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("weir dev schema-registry: %v", err)
		}
	}()
	eventually(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(out.String(), "schema registry listening on http://"+addr), out.String()
	})
	cl, err := sr.NewClient(sr.URLs("http://" + addr))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := cl.CreateSchema(context.Background(), "t-value", sr.Schema{Schema: `"string"`, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.SchemaByID(context.Background(), ss.ID)
	if err != nil || got.Schema != `"string"` {
		t.Fatalf("schema %d: %+v, %v", ss.ID, got, err)
	}
	// A taken address is an error, not a hang.
	c2 := newDevRegistryCommand(g)
	c2.SetArgs([]string{"--addr", addr})
	c2.SilenceUsage, c2.SilenceErrors = true, true
	if err := c2.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("second registry on %s: %v", addr, err)
	}
}
