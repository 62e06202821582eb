package datagen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

var errStop = errors.New("stop")

// restoreRounds runs a bounded stream through rounds of (run each
// subtask to a random point, snapshot, restore at a random parallelism) and
// checks that the events that came out are the p=1 stream exactly once. A
// restore after a restore at another parallelism used to emit again what
// the first generation had emitted above the second's positions: the
// second's states had dropped it.
func restoreRounds(t *testing.T, rnd *rand.Rand, n *spec.Node, count int64, want map[int64]dataflow.Record) {
	t.Helper()
	got := map[int64]int{}
	var states [][]byte
	par := 1 + rnd.IntN(4)
	for round := 0; ; round++ {
		if round > 0 {
			par = 1 + rnd.IntN(4)
		}
		var next [][]byte
		finished := 0
		for sub := range par {
			s := build(t, n, sub, par)
			if states != nil {
				if err := s.Restore(states); err != nil {
					t.Fatalf("round %d: restore at p=%d: %v", round, par, err)
				}
			}
			stopAt := 1 + rnd.IntN(int(count)/2)
			if round >= 4 {
				stopAt = int(count) + 1 // let the last rounds finish
			}
			out := &collector{}
			out.onEmit = func(k int) error {
				if k == stopAt {
					// The barrier follows the record that was just
					// emitted: it counts as emitted.
					return errStop
				}
				return nil
			}
			err := s.Run(context.Background(), out)
			switch {
			case err == nil:
				finished++
			case !errors.Is(err, errStop):
				t.Fatal(err)
			}
			st, _ := s.Snapshot(int64(round))
			next = append(next, st)
			for _, r := range out.recs {
				got[r.Origin.Offset]++
				if !sameRecord(r, want[r.Origin.Offset]) {
					t.Fatalf("round %d p=%d: event %d is %v, want %v", round, par, r.Origin.Offset, r.Fields, want[r.Origin.Offset].Fields)
				}
			}
		}
		states = next
		if finished == par {
			break
		}
	}
	for i := range count {
		if got[i] != 1 {
			t.Fatalf("event %d emitted %d times", i, got[i])
		}
	}
}

// Checkpoint and restore mid-stream, also at another parallelism, loses
// and duplicates nothing, over random stop points and parallelisms.
func TestNexmarkRestoreMidStream(t *testing.T) {
	const count = 2000
	want := stream(t, nexmarkNode(11, count), 1)
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			restoreRounds(t, rand.New(rand.NewPCG(seed, 1)), nexmarkNode(11, count), count, want)
		})
	}
}

func TestSequenceRestoreRounds(t *testing.T) {
	const count = 1000
	n := node(spec.DatagenSource{Profile: ProfileSequence, Count: count}, nil)
	want := stream(t, n, 1)
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			restoreRounds(t, rand.New(rand.NewPCG(seed, 2)), n, count, want)
		})
	}
}

// A state that must remember skipped indexes is a table; once the subtask
// has passed them it is 24 bytes again.
func TestTableStateShrinks(t *testing.T) {
	n := node(spec.DatagenSource{Profile: ProfileSequence, Count: 100}, nil)
	var states [][]byte
	for sub, next := range []int64{0, 61} { // subtask 1 of 2 is far ahead
		s := build(t, n, sub, 2)
		s.next.Store(next)
		st, _ := s.Snapshot(1)
		states = append(states, st)
	}
	s := build(t, n, 0, 3)
	if err := s.Restore(states); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Snapshot(2); len(st) != 24+8*2 {
		t.Fatalf("state of %d bytes right after a rescale, want a table of 2 classes", len(st))
	}
	out := &collector{}
	run(t, s, out)
	if st, _ := s.Snapshot(3); len(st) != 24 {
		t.Fatalf("state of %d bytes at the end, want 24", len(st))
	}
	for _, r := range out.recs {
		if o := r.Origin.Offset; o%3 != 0 || (o%2 == 1 && o < 61) {
			t.Fatalf("emitted %d again", o)
		}
	}
}
