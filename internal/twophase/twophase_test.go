package twophase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// book is a participant over an in-memory "outside system": transactions
// are named by a counter, committed ones are a set. It records the calls.
type book struct {
	next      int
	open      bool
	committed map[int]bool
	calls     []string
	failOn    int // Commit of this transaction fails (0: none)
	aborted   bool
	// unknown is how many commits answer ErrOutcomeUnknown before the
	// next one does as usual; lost says whether those did commit (the
	// answer was lost) or not (the request was).
	unknown int
	lost    bool
	// then, when set, is the answer after the unknown ones.
	then error
}

func (b *book) write() { b.open = true }

func (b *book) PreCommit(_ context.Context, n int64) (int, bool, error) {
	if !b.open {
		return 0, false, nil
	}
	b.open = false
	b.next++
	return b.next, true, nil
}

func (b *book) Commit(_ context.Context, p Pending[int]) error {
	b.calls = append(b.calls, "commit")
	if b.unknown > 0 {
		b.unknown--
		if b.lost {
			b.committed[p.Committable] = true
		}
		return fmt.Errorf("no answer: %w", ErrOutcomeUnknown)
	}
	if b.then != nil {
		return b.then
	}
	if p.Committable == b.failOn {
		return errors.New("gone")
	}
	b.committed[p.Committable] = true
	return nil
}

func (b *book) EncodeState(pending []Pending[int]) ([]byte, error) { return json.Marshal(pending) }

func (b *book) PlanRecovery(states [][]byte) ([]Pending[int], error) {
	var all []Pending[int]
	for _, s := range states {
		var ps []Pending[int]
		if err := json.Unmarshal(s, &ps); err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	return all, nil
}

func (b *book) AbortLingering(context.Context) error {
	b.calls = append(b.calls, "abort-lingering")
	b.aborted = true
	return nil
}

// The lifecycle: pre-committed transactions commit only when their
// checkpoint completes, in order; a restore of a checkpoint commits what it
// lists before aborting the rest; the end of input commits the tail.
func TestDriverLifecycle(t *testing.T) {
	ctx := context.Background()
	b := &book{committed: map[int]bool{}}
	d := New[int](b, "sink", "")
	b.write()
	s1, err := d.PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.PreCommit(ctx, 2); err != nil { // nothing written: nothing pending
		t.Fatal(err)
	}
	b.write()
	s3, _ := d.PreCommit(ctx, 3)
	if got := len(d.Pending()); got != 2 {
		t.Fatalf("pending %d, want 2", got)
	}
	if err := d.CommitUpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if !b.committed[1] || b.committed[2] {
		t.Fatalf("after checkpoint 2 committed %v, want only 1", b.committed)
	}
	if s1 == nil {
		t.Fatal("no state")
	}

	// The job fails after checkpoint 3 completed but before its commit:
	// the restore commits what checkpoint 3 lists (1 again: idempotent, and
	// 2), oldest first, then aborts the rest.
	b2 := &book{committed: map[int]bool{}, next: 10}
	d2 := New[int](b2, "sink", "")
	d2.Restore([][]byte{s3})
	if err := d2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if !b2.committed[1] || !b2.committed[2] || !reflect.DeepEqual(b2.calls, []string{"commit", "commit", "abort-lingering"}) {
		t.Fatalf("restore committed %v with calls %v", b2.committed, b2.calls)
	}
	b2.write()
	if err := d2.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if !b2.committed[11] || len(d2.Pending()) != 0 || d2.Committed() != 3 {
		t.Fatalf("finish: committed %v, pending %v", b2.committed, d2.Pending())
	}
}

// A commit that fails stays pending and fails loudly, naming the
// committable and its checkpoint; on restore the hint is added.
func TestDriverCommitFailureStaysPending(t *testing.T) {
	ctx := context.Background()
	b := &book{committed: map[int]bool{}, failOn: 1}
	d := New[int](b, "sink \"x\"", "check the timeout")
	b.write()
	st, _ := d.PreCommit(ctx, 4)
	err := d.CommitUpTo(ctx, 4)
	if err == nil || !strings.Contains(err.Error(), "checkpoint 4 complete: cannot commit 1 of checkpoint 4: gone") {
		t.Fatalf("error %v", err)
	}
	if len(d.Pending()) != 1 {
		t.Fatalf("pending %v, want the failed one", d.Pending())
	}
	b2 := &book{committed: map[int]bool{}, failOn: 1}
	d2 := New[int](b2, "sink", "check the timeout")
	d2.Restore([][]byte{st})
	err = d2.Recover(ctx)
	if err == nil || !strings.Contains(err.Error(), "check the timeout") || b2.aborted {
		t.Fatalf("recover: %v (aborted lingering: %v)", err, b2.aborted)
	}
}

// now is an "after" that fires at once, so the backoff takes no time.
func now(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

// A commit whose outcome is unknown is committed again until it succeeds
// (whether the lost attempt committed or not: Commit is idempotent), the
// wait counted once as blocked; before, the first unknown outcome failed
// the task. A definite error after unknown ones is returned as is, and the
// end of ctx ends the retries with both reasons.
func TestDriverRecommitsUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	for _, lost := range []bool{false, true} {
		b := &book{committed: map[int]bool{}, unknown: 3, lost: lost}
		d := New[int](b, "sink", "")
		d.after = now
		var blocked, unblocked int
		d.Blocked = func() func() {
			blocked++
			return func() { unblocked++ }
		}
		b.write()
		if _, err := d.PreCommit(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := d.CommitUpTo(ctx, 1); err != nil {
			t.Fatalf("lost=%v: %v", lost, err)
		}
		if !b.committed[1] || len(d.Pending()) != 0 || d.Committed() != 1 || d.Recommits() != 3 || len(b.calls) != 4 {
			t.Fatalf("lost=%v: committed %v, pending %v, recommits %d, calls %v", lost, b.committed, d.Pending(), d.Recommits(), b.calls)
		}
		if blocked != 1 || unblocked != 1 {
			t.Fatalf("blocked %d, unblocked %d; want one wait", blocked, unblocked)
		}
	}

	// On restore too.
	b := &book{committed: map[int]bool{}}
	d := New[int](b, "sink", "")
	b.write()
	st, _ := d.PreCommit(ctx, 1)
	b2 := &book{committed: map[int]bool{}, unknown: 2}
	d2 := New[int](b2, "sink", "")
	d2.after = now
	d2.Restore([][]byte{st})
	if err := d2.Recover(ctx); err != nil || !b2.committed[1] || !b2.aborted {
		t.Fatalf("recover: %v, committed %v", err, b2.committed)
	}

	fenced := errors.New("fenced")
	b3 := &book{committed: map[int]bool{}, unknown: 2, then: fenced}
	d3 := New[int](b3, "sink", "")
	d3.after = now
	b3.write()
	d3.PreCommit(ctx, 1)
	if err := d3.CommitUpTo(ctx, 1); !errors.Is(err, fenced) || len(d3.Pending()) != 1 {
		t.Fatalf("definite error after unknown ones: %v, pending %v", err, d3.Pending())
	}

	b4 := &book{committed: map[int]bool{}, unknown: 1 << 30}
	d4 := New[int](b4, "sink", "")
	cctx, cancel := context.WithCancel(ctx)
	d4.after = func(time.Duration) <-chan time.Time {
		if len(b4.calls) == 5 {
			cancel()
		}
		return now(0)
	}
	b4.write()
	d4.PreCommit(ctx, 1)
	err := d4.CommitUpTo(cctx, 1)
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) || len(d4.Pending()) != 1 {
		t.Fatalf("cancelled: %v, pending %v", err, d4.Pending())
	}
}
