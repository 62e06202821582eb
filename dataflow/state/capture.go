package state

import (
	"encoding/binary"
	"fmt"
)

// SnapshotInfo describes an encoded snapshot.
type SnapshotInfo struct {
	// Keys is the number of distinct keys with state or timers in it.
	Keys int64
}

// Cloner is implemented by a Serializer whose values share memory that
// the operator changes in place (slices, maps, pointers). CaptureSnapshot
// copies such a value with Clone at the barrier, so that the encoding,
// later and on another goroutine, sees it as it was. A value state whose
// serializer is not a Cloner (and whose type is not a plain scalar) is
// encoded at the capture instead.
type Cloner[T any] interface {
	Clone(v T) T
}

// capturer is implemented by tables that can copy their entries cheaply
// at the barrier and encode them later. capture returns nil when the
// table cannot (its values are not safe to copy).
type capturer interface {
	capture(now int64) func(recs []snapRec) ([]snapRec, error)
}

// CaptureSnapshot is the two-phase form of b.Snapshot for
// dataflow.AsyncSnapshotter: it captures the state on the caller's (the
// task's) goroutine, and the returned encode, which may run on another
// goroutine while the operator goes on, writes exactly the bytes Snapshot
// would have written at the capture. encode touches nothing of b.
func CaptureSnapshot(b Backend) (encode func() ([]byte, SnapshotInfo, error), err error) {
	c, err := b.heap().capture(true)
	if err != nil {
		return nil, err
	}
	return func() ([]byte, SnapshotInfo, error) {
		buf, _, info, err := c.encode()
		return buf, info, err
	}, nil
}

// capture copies the live entries with their values (cloned when the
// serializer is a Cloner); the payloads are encoded by the returned
// function.
func (t *valueTable[T]) capture(now int64) func(recs []snapRec) ([]snapRec, error) {
	cl, isCloner := t.ser.(Cloner[T])
	if !isCloner {
		var zero T
		switch any(zero).(type) {
		case int64, int, float64, string, bool:
		default:
			return nil
		}
	}
	type copied struct {
		k   skey
		v   T
		exp int64
	}
	es := make([]copied, 0, len(t.m))
	for _, e := range t.m {
		if expired(e.exp, now) {
			continue
		}
		v := e.v
		if isCloner {
			v = cl.Clone(v)
		}
		es = append(es, copied{e.k, v, e.exp})
	}
	ser, name := t.ser, t.d.Name
	return func(recs []snapRec) ([]snapRec, error) {
		var buf []byte
		for _, e := range es {
			start := len(buf)
			buf = binary.AppendVarint(buf, e.exp)
			var err error
			if buf, err = ser.Append(buf, e.v); err != nil {
				return nil, fmt.Errorf("state %q key %v: %w", name, e.k.key, err)
			}
			recs = append(recs, snapRec{k: e.k, payload: buf[start:len(buf):len(buf)]})
		}
		return recs, nil
	}
}
