package state

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

type sliceSer struct{}

func (sliceSer) Append(buf []byte, v []int64) ([]byte, error) {
	buf = append(buf, byte(len(v)))
	for _, x := range v {
		buf = appendKey(buf, x)
	}
	return buf, nil
}

func (sliceSer) Decode(b []byte) ([]int64, error) {
	d := NewReader(b)
	n := int(d.Byte())
	out := make([]int64, n)
	for i := range out {
		out[i], _ = d.Key().(int64)
	}
	return out, d.Err()
}

func (sliceSer) Clone(v []int64) []int64 { return append([]int64(nil), v...) }

// CaptureSnapshot's encode, run after the state has changed (values
// updated in place, deleted, new ones, timers fired), writes exactly what
// Snapshot wrote at the capture, for capturable states (a Cloner, a
// scalar; map values and list elements with a Cloner) and the others
// alike.
func TestCaptureSnapshotIsolated(t *testing.T) {
	clk := &fakeClock{now: 1000}
	h := newTestHeap(t, clk)
	sl, _ := NewValue[[]int64](h, Descriptor{Name: "slices"}, sliceSer{})
	n, _ := NewValue[int64](h, Descriptor{Name: "n", TTL: TTL{Duration: time.Minute}}, nil)
	m, _ := NewMap[string, int64](h, Descriptor{Name: "m"}, nil, nil)
	ms, _ := NewMap[string, []int64](h, Descriptor{Name: "map slices"}, nil, sliceSer{})
	ls, _ := NewList[[]int64](h, Descriptor{Name: "list slices"}, sliceSer{})
	msv := map[int][]int64{}
	lsv := map[int][]int64{}
	for i := range 50 {
		h.SetCurrentKey(fmt.Sprintf("k%d", i))
		_ = sl.Put(int64(i%3), []int64{int64(i), 1})
		_ = n.Put(0, int64(i))
		_ = m.Put(0, "x", int64(i))
		msv[i], lsv[i] = []int64{int64(i), 2}, []int64{int64(i), 3}
		_ = ms.Put(0, "s", msv[i])
		_ = ls.Add(0, lsv[i])
		h.Timers().RegisterEventTime(0, int64(i))
	}
	want, err := h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	encode, err := CaptureSnapshot(h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		h.SetCurrentKey(fmt.Sprintf("k%d", i))
		_ = sl.Update(int64(i%3), func(v *[]int64, ok bool) (bool, error) { (*v)[0] = -1; return true, nil })
		if i%2 == 0 {
			_ = n.Delete(0)
		}
		_ = m.Put(0, "y", 1)
		// The operator changes values it holds in place.
		msv[i][0], lsv[i][0] = -2, -3
	}
	h.SetCurrentKey("new")
	_ = sl.Put(0, []int64{9})
	_ = h.Timers().AdvanceWatermark(25, func(Timer) error { return nil })
	got, info, err := encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || info.Keys != 50 {
		t.Fatalf("capture differs from the snapshot at the capture (%d vs %d bytes), %d keys", len(got), len(want), info.Keys)
	}
}

func TestValueUpdate(t *testing.T) {
	clk := &fakeClock{now: 1000}
	h := newTestHeap(t, clk)
	v, _ := NewValue[int64](h, Descriptor{Name: "v", TTL: TTL{Duration: 10 * time.Millisecond}}, nil)
	h.SetCurrentKey("a")
	inc := func(x *int64, ok bool) (bool, error) { *x++; return true, nil }
	peek := func(x *int64, ok bool) (bool, error) { return false, nil }
	_ = v.Update(0, peek)
	if _, ok, _ := v.Get(0); ok {
		t.Fatal("Update that does not store created a value")
	}
	_ = v.Update(0, inc)
	_ = v.Update(0, inc)
	if got, ok, _ := v.Get(0); !ok || got != 2 {
		t.Fatalf("after two increments: %d %v", got, ok)
	}
	clk.now += 5
	_ = v.Update(0, inc) // extends the TTL
	clk.now += 8
	if got, ok, _ := v.Get(0); !ok || got != 3 {
		t.Fatalf("TTL not extended by a storing update: %d %v", got, ok)
	}
	clk.now += 20
	var sawExisting bool
	_ = v.Update(0, func(x *int64, ok bool) (bool, error) { sawExisting = ok; return false, nil })
	if sawExisting {
		t.Fatal("Update saw an expired value")
	}
	if errUpd := v.Update(0, func(*int64, bool) (bool, error) { return true, fmt.Errorf("no") }); errUpd == nil {
		t.Fatal("fn's error is lost")
	}
	if _, ok, _ := v.Get(0); ok {
		t.Fatal("a failed Update stored a value")
	}
	// Range sees what is there.
	h.SetCurrentKey("b")
	_ = v.Put(7, 1)
	seen := 0
	v.Range(func(key any, ns int64, val int64) bool { seen++; return key == "b" && ns == 7 && val == 1 })
	if seen != 1 {
		t.Fatalf("Range saw %d values", seen)
	}
}
