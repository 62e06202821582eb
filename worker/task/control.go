package task

import (
	"context"
	"sync"
	"sync/atomic"

	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// CommandKind says what a checkpoint command asks of a task.
type CommandKind uint8

const (
	// CmdTrigger: a source injects barrier n (TriggerCheckpoint).
	CmdTrigger CommandKind = iota + 1
	// CmdComplete: checkpoint n is committed (NotifyCheckpointComplete).
	CmdComplete
	// CmdAbort: checkpoint n was aborted (AbortCheckpoint).
	CmdAbort
)

// Command is one checkpoint message from the coordinator for one task.
type Command struct {
	Kind         CommandKind
	CheckpointID int64
	// Trigger only.
	Timestamp int64 // epoch ms
	Savepoint bool
	Stop      bool
	// Complete only: the checkpoint covers the job's whole input (every
	// subtask acknowledged it at the end of its input).
	Final bool
}

// Control is a running task's mailbox for checkpoint commands. The worker
// session posts into it from its own goroutine; the task takes the commands
// on its goroutine (non-source tasks, between two input batches) or under
// its source lock (source tasks). Safe for concurrent use; posting never
// blocks.
type Control struct {
	mu      sync.Mutex
	cmds    []Command
	waker   func() // wakes the task; set while it runs
	closed  bool
	wake    chan struct{} // capacity 1
	pending atomic.Bool
}

// NewControl returns an empty mailbox.
func NewControl() *Control { return &Control{wake: make(chan struct{}, 1)} }

// Post queues a command. It returns false, dropping the command, once the
// task has ended (the caller declines a trigger then).
func (c *Control) Post(cmd Command) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.cmds = append(c.cmds, cmd)
	c.pending.Store(true)
	w := c.waker
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	if w != nil {
		w()
	}
	return true
}

// setWaker installs what wakes the task's loop (its input gate).
func (c *Control) setWaker(f func()) {
	c.mu.Lock()
	c.waker = f
	c.mu.Unlock()
}

// Ready is signalled after a Post; a RunFunc other than Run may select on
// it and then Take.
func (c *Control) Ready() <-chan struct{} { return c.wake }

// Take returns and clears the queued commands (for a RunFunc other than
// Run; Run takes them itself).
func (c *Control) Take() []Command { return c.take() }

// take returns and clears the queued commands.
func (c *Control) take() []Command {
	if c == nil || !c.pending.Load() {
		return nil
	}
	c.mu.Lock()
	cmds := c.cmds
	c.cmds = nil
	c.pending.Store(false)
	c.mu.Unlock()
	return cmds
}

// close drops queued commands and refuses new ones; it returns the
// triggers that were still queued so they can be declined.
func (c *Control) close() []Command {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.waker = nil
	cmds := c.cmds
	c.cmds = nil
	c.pending.Store(false)
	return cmds
}

// Reporter receives a task's checkpoint acknowledgements and declines; the
// worker sends them to the coordinator. Calls must not block for long.
type Reporter interface {
	Ack(*controlpb.CheckpointAck)
	Decline(*controlpb.CheckpointDecline)
}

// StateStore is the part of checkpoint storage a task uses; see
// checkpoint.WriteState, ReadState and ReadMetadata. Directories are
// relative to the store's root.
type StateStore interface {
	WriteState(ctx context.Context, dir, name string, data []byte) (*checkpointpb.StateHandle, error)
	ReadState(ctx context.Context, dir string, h *checkpointpb.StateHandle) ([]byte, error)
	ReadMetadata(ctx context.Context, dir string) (*checkpointpb.Metadata, error)
	Close() error
}

// OpenStoreFunc opens the checkpoint storage rooted at uri.
type OpenStoreFunc func(uri string) (StateStore, error)
