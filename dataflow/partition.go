package dataflow

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
)

// DefaultMaxParallelism is the number of key groups when a job does not set
// max_parallelism. It bounds the parallelism a job can be rescaled to.
const DefaultMaxParallelism = 128

// KeyGroupRange is an inclusive range of key groups [Start, End].
type KeyGroupRange struct{ Start, End int }

// Contains reports whether g is in the range.
func (r KeyGroupRange) Contains(g int) bool { return g >= r.Start && g <= r.End }

// KeyGroupRangeFor returns the key groups owned by subtask i of n when there
// are maxParallelism key groups. Every key group belongs to exactly one
// subtask, and ranges are contiguous so state can be redistributed when the
// parallelism changes.
func KeyGroupRangeFor(maxParallelism, n, i int) KeyGroupRange {
	return KeyGroupRange{
		Start: (i*maxParallelism + n - 1) / n,
		End:   ((i+1)*maxParallelism+n-1)/n - 1,
	}
}

// SubtaskForKeyGroup returns the subtask of n that owns key group g.
func SubtaskForKeyGroup(maxParallelism, n, g int) int {
	return g * n / maxParallelism
}

// KeyGroup returns the key group of a key.
func KeyGroup(key any, maxParallelism int) int {
	return int(HashKey(key) % uint64(maxParallelism))
}

// HashKey hashes a key value deterministically across processes and runs.
func HashKey(key any) uint64 {
	h := fnv.New64a()
	var buf [32]byte
	switch k := key.(type) {
	case string:
		h.Write([]byte(k))
	case []byte:
		h.Write(k)
	case int64:
		h.Write(strconv.AppendInt(buf[:0], k, 10))
	case int:
		h.Write(strconv.AppendInt(buf[:0], int64(k), 10))
	case float64:
		if k == math.Trunc(k) && math.Abs(k) < 1<<53 {
			h.Write(strconv.AppendInt(buf[:0], int64(k), 10))
		} else {
			h.Write(strconv.AppendFloat(buf[:0], k, 'g', -1, 64))
		}
	case bool:
		if k {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	case nil:
	case []any:
		for _, e := range k {
			var b [8]byte
			v := HashKey(e)
			for i := range b {
				b[i] = byte(v >> (8 * i))
			}
			h.Write(b[:])
		}
	default:
		fmt.Fprint(h, k)
	}
	return mix64(h.Sum64())
}

// mix64 spreads fnv's low bits, which are poor for short keys.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Partitioning says how records are routed from an upstream vertex's
// subtasks to a downstream vertex's subtasks.
type Partitioning string

const (
	// Forward: subtask i sends to subtask i (same parallelism only).
	Forward Partitioning = "forward"
	// Hash: by key group of Record.Key.
	Hash Partitioning = "hash"
	// Rebalance: round robin over all downstream subtasks.
	Rebalance Partitioning = "rebalance"
	// Broadcast: every record to every downstream subtask.
	Broadcast Partitioning = "broadcast"
)
