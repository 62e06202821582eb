package state

// SnapshotInfo describes an encoded snapshot.
type SnapshotInfo struct {
	// Keys is the number of distinct keys with state or timers in it.
	Keys int64
}

// Cloner is implemented by a Serializer whose values share memory that
// the operator changes in place (slices, maps, pointers). The capture of
// Backend.CaptureSnapshot copies such a value with Clone at the barrier,
// so that the encoding, later and on another goroutine, sees it as it
// was. A state whose values can share memory and whose serializer is not
// a Cloner is encoded at the capture instead.
type Cloner[T any] interface {
	Clone(v T) T
}

// CaptureSnapshot is b.CaptureSnapshot, for dataflow.AsyncSnapshotter
// implementations: it captures the state on the caller's (the task's)
// goroutine, and the returned encode, which may run on another goroutine
// while the operator goes on, writes exactly the bytes Snapshot would have
// written at the capture. encode touches nothing of b.
func CaptureSnapshot(b Backend) (encode func() ([]byte, SnapshotInfo, error), err error) {
	return b.CaptureSnapshot()
}
