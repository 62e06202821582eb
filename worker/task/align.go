package task

import (
	"time"

	"github.com/weir-stream/weir/dataflow"
)

// aligner tracks the barrier a non-source task is aligning. In
// exactly-once mode a channel that delivered the barrier is blocked until
// every channel that has not ended delivered it; in at-least-once mode no
// channel is blocked and the checkpoint is taken when the last barrier
// arrives. One checkpoint aligns at a time: a barrier with a higher id means
// the current one was aborted upstream, so it is abandoned.
type aligner struct {
	exactlyOnce bool
	block       func(ch int)
	unblock     func(ch int)

	cur     dataflow.Barrier // ID 0: not aligning
	seen    []bool
	nseen   int
	start   time.Time
	blocked []int
	// done is the highest id taken or abandoned; older barriers are stale.
	done int64
}

func newAligner(n int, exactlyOnce bool, block, unblock func(int)) *aligner {
	return &aligner{exactlyOnce: exactlyOnce, block: block, unblock: unblock, seen: make([]bool, n)}
}

// barrier notes barrier b on channel ch. It returns true when the
// checkpoint is aligned given which channels have ended.
func (a *aligner) barrier(ch int, b dataflow.Barrier, ended func(int) bool) bool {
	if b.ID <= a.done || (a.cur.ID != 0 && b.ID < a.cur.ID) {
		// A barrier of a checkpoint abandoned or taken already, or of an
		// older one than the one aligning (which abandoned it): it must
		// not count for the newer one's channel.
		return false
	}
	if a.cur.ID != 0 && b.ID > a.cur.ID {
		a.abandon()
	}
	if a.cur.ID == 0 {
		a.cur = b
		a.start = time.Now()
	}
	// Past the end of input only if every channel is (an ended channel,
	// which delivers no barrier, is).
	a.cur.EndOfInput = a.cur.EndOfInput && b.EndOfInput
	if !a.seen[ch] {
		a.seen[ch] = true
		a.nseen++
		if a.exactlyOnce {
			a.block(ch)
			a.blocked = append(a.blocked, ch)
		}
	}
	return a.aligned(ended)
}

// aligned reports whether every channel that has not ended delivered the
// current barrier; end of stream counts as the barrier.
func (a *aligner) aligned(ended func(int) bool) bool {
	if a.cur.ID == 0 {
		return false
	}
	for ch, s := range a.seen {
		if !s && !ended(ch) {
			return false
		}
	}
	return true
}

// finish ends the current alignment after the checkpoint was taken: the
// channels are unblocked. It returns how long alignment took.
func (a *aligner) finish() time.Duration {
	d := time.Since(a.start)
	a.done = a.cur.ID
	a.reset()
	return d
}

// abandon gives up the current checkpoint (aborted).
func (a *aligner) abandon() {
	if a.cur.ID == 0 {
		return
	}
	a.done = max(a.done, a.cur.ID)
	a.reset()
}

// abort abandons checkpoint id if it is being aligned, and makes its late
// barriers stale.
func (a *aligner) abort(id int64) {
	if a.cur.ID == id {
		a.abandon()
		return
	}
	if a.cur.ID == 0 || id < a.cur.ID {
		a.done = max(a.done, id)
	}
}

func (a *aligner) reset() {
	for _, ch := range a.blocked {
		a.unblock(ch)
	}
	a.blocked = a.blocked[:0]
	clear(a.seen)
	a.nseen = 0
	a.cur = dataflow.Barrier{}
}
