package exchange

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/weir-stream/weir/dataflow"
)

// EdgeInputs lists the channels a subtask reads over one input edge: one
// per upstream subtask in FromSubtasks, all to ToSubtask.
type EdgeInputs struct {
	Edge         int
	FromSubtasks []int
	ToSubtask    int
}

// ChannelKey names one input channel of a gate.
type ChannelKey struct {
	Edge, From, To int
}

func (k ChannelKey) String() string {
	return fmt.Sprintf("edge %d subtask %d->%d", k.Edge, k.From, k.To)
}

// InputGate is the receiving end of a task's input channels. Next, Block
// and Unblock are meant for the task's goroutine; Close may be called from
// any goroutine.
type InputGate struct {
	x       *Exchange
	job     string
	attempt int64
	keys    []ChannelKey
	chans   []*inputChannel
	done    chan struct{} // closed by Close

	mu      sync.Mutex
	notify  chan struct{} // capacity 1: a channel got data, an error or was unblocked
	next    int           // round robin start
	ended   int           // channels whose end of stream was handed out
	closed  bool
	woken   bool  // Wake was called: Next returns an empty batch
	failErr error // the gate as a whole failed (exchange closed)

	// prev is the batch Next handed out last; it goes back to spare on the
	// following Next, so steady-state exchange allocates no batches.
	prev  []dataflow.Element
	spare [][]dataflow.Element
}

// maxSpare bounds the recycled batches a gate keeps.
const maxSpare = 16

// spareBatch returns an empty batch with at least capacity n, recycled when
// one is available.
func (g *InputGate) spareBatch(n int) []dataflow.Element {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.spare) > 0 {
		b := g.spare[len(g.spare)-1]
		g.spare = g.spare[:len(g.spare)-1]
		if cap(b) >= n {
			return b[:0]
		}
	}
	return make([]dataflow.Element, 0, n)
}

// inputChannel's mutable fields are guarded by gate.mu.
type inputChannel struct {
	gate    *InputGate
	idx     int
	key     chanKey
	credits *credits

	queue    [][]dataflow.Element
	attached bool
	blocked  bool
	sawEOS   bool // end of stream received
	ended    bool // end of stream handed to the task
	err      error
}

// OpenInputGate registers the channels a subtask of the given attempt reads,
// in the order given (the channel numbers Next returns). Channels may
// connect before or after.
func (x *Exchange) OpenInputGate(job string, attempt int64, edges []EdgeInputs) (*InputGate, error) {
	g := &InputGate{x: x, job: job, attempt: attempt, done: make(chan struct{}), notify: make(chan struct{}, 1)}
	for _, e := range edges {
		for _, from := range e.FromSubtasks {
			if e.Edge < 0 || e.Edge > math.MaxInt32 || from < 0 || from > math.MaxInt32 || e.ToSubtask < 0 || e.ToSubtask > math.MaxInt32 {
				return nil, fmt.Errorf("exchange: invalid channel edge %d subtask %d->%d", e.Edge, from, e.ToSubtask)
			}
			k := chanKey{job: job, attempt: attempt, edge: int32(e.Edge), from: int32(from), to: int32(e.ToSubtask)}
			g.keys = append(g.keys, ChannelKey{Edge: e.Edge, From: from, To: e.ToSubtask})
			g.chans = append(g.chans, &inputChannel{gate: g, idx: len(g.chans), key: k, credits: newCredits(x.cfg.buffers)})
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil, ErrClosed
	}
	if latest, ok := x.latest[job]; ok && latest > attempt {
		return nil, fmt.Errorf("%w: job %s attempt %d, newest attempt is %d", ErrStaleAttempt, job, attempt, latest)
	}
	seen := map[chanKey]bool{}
	for _, c := range g.chans {
		if x.chans[c.key] != nil || seen[c.key] {
			return nil, fmt.Errorf("%w: %s", ErrDuplicate, c.key)
		}
		seen[c.key] = true
	}
	x.latest[job] = attempt
	for _, c := range g.chans {
		x.chans[c.key] = c
	}
	close(x.regChanged)
	x.regChanged = make(chan struct{})
	return g, nil
}

// NumChannels is the number of channels of the gate.
func (g *InputGate) NumChannels() int { return len(g.chans) }

// Channel returns the key of channel i.
func (g *InputGate) Channel(i int) ChannelKey { return g.keys[i] }

// Next returns the next batch from a channel that has data and is not
// blocked, round robin over the channels. Each batch is one frame: every
// element that is not a record is the last of its batch. Next returns
// io.EOF once every channel's end of stream was returned, ctx.Err() when
// ctx ends, and an error naming the channel when one breaks. A batch is
// valid until the next call to Next, which recycles its memory. After Wake
// it returns channel -1 and an empty batch.
func (g *InputGate) Next(ctx context.Context) (channel int, batch []dataflow.Element, err error) {
	if g.prev != nil {
		// The caller is done with the last batch (see the doc comment):
		// drop its references and keep it for a sender to refill.
		clear(g.prev)
		g.mu.Lock()
		if len(g.spare) < maxSpare {
			g.spare = append(g.spare, g.prev[:0])
		}
		g.prev = nil
		g.mu.Unlock()
	}
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return -1, nil, ErrClosed
		}
		if g.failErr != nil {
			err := g.failErr
			g.mu.Unlock()
			return -1, nil, err
		}
		if g.ended == len(g.chans) {
			g.mu.Unlock()
			return -1, nil, io.EOF
		}
		if g.woken {
			g.woken = false
			g.mu.Unlock()
			return -1, nil, nil
		}
		n := len(g.chans)
		for i := range n {
			c := g.chans[(g.next+i)%n]
			if c.ended {
				continue
			}
			if len(c.queue) == 0 && c.err != nil {
				err := fmt.Errorf("input channel %s: %w", g.keys[c.idx], c.err)
				g.mu.Unlock()
				return c.idx, nil, err
			}
			if c.blocked || len(c.queue) == 0 {
				continue
			}
			batch = c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			g.next = c.idx + 1
			if batch[len(batch)-1].Kind == dataflow.KindEndOfStream {
				c.ended = true
				g.ended++
			}
			g.prev = batch
			g.mu.Unlock()
			c.credits.add(1)
			return c.idx, batch, nil
		}
		g.mu.Unlock()
		select {
		case <-g.notify:
		case <-ctx.Done():
			return -1, nil, ctx.Err()
		}
	}
}

// Wake makes the current or next call of Next return at once with channel
// -1 and an empty batch (unless it has an error or io.EOF to return), so
// the task's goroutine can look at its mailbox. Safe from any goroutine.
func (g *InputGate) Wake() {
	g.mu.Lock()
	g.woken = true
	g.mu.Unlock()
	g.signal()
}

// Block stops Next from returning batches of channel i until Unblock.
func (g *InputGate) Block(i int) {
	g.mu.Lock()
	g.chans[i].blocked = true
	g.mu.Unlock()
}

// Unblock lets Next return batches of channel i again.
func (g *InputGate) Unblock(i int) {
	g.mu.Lock()
	g.chans[i].blocked = false
	g.mu.Unlock()
	g.signal()
}

// Buffered returns the number of frames waiting in channel i's buffer.
func (g *InputGate) Buffered(i int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.chans[i].queue)
}

// Close unregisters the gate's channels and breaks their streams. It is
// idempotent.
func (g *InputGate) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	for _, c := range g.chans {
		c.queue = nil
	}
	close(g.done)
	g.mu.Unlock()
	g.signal()

	x := g.x
	x.mu.Lock()
	for _, c := range g.chans {
		if x.chans[c.key] == c {
			delete(x.chans, c.key)
		}
	}
	x.mu.Unlock()
}

func (g *InputGate) signal() {
	select {
	case g.notify <- struct{}{}:
	default:
	}
}

// fail fails the whole gate (the exchange is closing).
func (g *InputGate) fail(err error) {
	g.mu.Lock()
	if g.failErr == nil {
		g.failErr = err
	}
	g.mu.Unlock()
	g.signal()
}

// attach marks the channel connected; a channel has one sender at a time.
func (c *inputChannel) attach() error {
	g := c.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	if c.attached {
		return fmt.Errorf("%w: %s has a sender already", ErrDuplicate, c.key)
	}
	c.attached = true
	return nil
}

// push appends a received batch. A sender with credit never finds the
// buffer full; one that does broke the protocol.
func (c *inputChannel) push(batch []dataflow.Element) error {
	if len(batch) == 0 {
		return nil
	}
	g := c.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	if c.sawEOS {
		return fmt.Errorf("%w: %s: data after end of stream", ErrProtocol, c.key)
	}
	if len(c.queue) >= g.x.cfg.buffers {
		return fmt.Errorf("%w: %s: frame sent without credit (%d frames buffered)", ErrProtocol, c.key, len(c.queue))
	}
	for i := range batch[:len(batch)-1] {
		if batch[i].Kind != dataflow.KindRecord {
			return fmt.Errorf("%w: %s: %v element in the middle of a frame", ErrProtocol, c.key, batch[i].Kind)
		}
	}
	c.queue = append(c.queue, batch)
	if batch[len(batch)-1].Kind == dataflow.KindEndOfStream {
		c.sawEOS = true
	}
	select {
	case g.notify <- struct{}{}:
	default:
	}
	return nil
}

// fail records that the channel broke, unless its end of stream arrived.
func (c *inputChannel) fail(err error) {
	g := c.gate
	g.mu.Lock()
	if c.sawEOS || c.err != nil || g.closed {
		g.mu.Unlock()
		return
	}
	c.err = err
	g.mu.Unlock()
	g.signal()
}

func (c *inputChannel) eosReceived() bool {
	c.gate.mu.Lock()
	defer c.gate.mu.Unlock()
	return c.sawEOS
}
