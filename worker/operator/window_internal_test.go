package operator

import (
	"cmp"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/weir-stream/weir/dataflow/state"
)

func TestWindowStarts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		w := &window{size: 1 + rng.Int64N(30), slide: 1 + rng.Int64N(30)}
		ts := rng.Int64N(400) - 200
		if rng.IntN(10) == 0 {
			ts = maxEventTime - 1 - rng.Int64N(100)
			if rng.IntN(2) == 0 {
				ts = -ts
			}
		}
		first, last := w.starts(ts)
		// Brute force: every aligned start near t whose window holds t.
		var want []int64
		base := ts - mod(ts, w.slide)
		for s := base - 40*w.slide; s <= base+w.slide; s += w.slide {
			if s <= ts && ts < s+w.size {
				want = append(want, s)
			}
		}
		var got []int64
		for s := first; s <= last; s += w.slide {
			got = append(got, s)
		}
		if len(got) != len(want) || len(got) > 0 && (got[0] != want[0] || got[len(got)-1] != want[len(want)-1]) {
			t.Fatalf("size %d slide %d t %d: got %v, want %v", w.size, w.slide, ts, got, want)
		}
	}
}

func TestCell(t *testing.T) {
	var c cell
	for _, v := range []any{int64(math.MaxInt64), int64(1), int64(-5)} {
		c.add(aggSum, v, 0)
	}
	if r, ok := c.result(aggSum).(float64); !ok || r != float64(math.MaxInt64)+1-5 {
		t.Errorf("overflowing sum: %v", c.result(aggSum))
	}
	c = cell{}
	for _, v := range []any{int64(math.MinInt64), int64(-1)} {
		c.add(aggSum, v, 0)
	}
	if _, ok := c.result(aggSum).(float64); !ok {
		t.Errorf("negative overflow: %v", c.result(aggSum))
	}
	c = cell{}
	for _, v := range []any{int64(3), 2.5, nil, int64(1)} {
		c.add(aggMin, v, 0)
	}
	if c.result(aggMin) != int64(1) || c.n != 3 {
		t.Errorf("min %v n %d", c.result(aggMin), c.n)
	}
	c = cell{}
	for _, v := range []any{int64(3), 3.0} {
		c.add(aggMax, v, 0)
	}
	if c.result(aggMax) != 3.0 {
		t.Errorf("max of 3 and 3.0: %#v (the float sorts after the equal int)", c.result(aggMax))
	}
}

func TestCompareValues(t *testing.T) {
	ordered := []any{nil, false, true, math.Inf(-1), int64(-1), 0.5, int64(1), 1.0, "", "a", "b"}
	for i, a := range ordered {
		for j, b := range ordered {
			want := cmp.Compare(i, j)
			if got := state.CompareKeys(a, b); got != want {
				t.Errorf("compare(%#v, %#v) = %d, want %d", a, b, got, want)
			}
		}
	}
}
