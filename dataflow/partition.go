package dataflow

import (
	"fmt"
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
// Integral floats hash like the integer, so a key read as 42 from JSON and
// computed as 42.0 lands in the same key group.
func HashKey(key any) uint64 {
	return mix64(hashValue(fnvOffset, key))
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashValue folds key into the FNV-1a state h without allocating: this runs
// once per record on every hash-partitioned edge.
func hashValue(h uint64, key any) uint64 {
	var buf [32]byte
	switch k := key.(type) {
	case string:
		return fnvString(h, k)
	case []byte:
		return fnvBytes(h, k)
	case int64:
		return fnvBytes(h, strconv.AppendInt(buf[:0], k, 10))
	case int:
		return fnvBytes(h, strconv.AppendInt(buf[:0], int64(k), 10))
	case float64:
		if k == math.Trunc(k) && math.Abs(k) < 1<<53 {
			return fnvBytes(h, strconv.AppendInt(buf[:0], int64(k), 10))
		}
		return fnvBytes(h, strconv.AppendFloat(buf[:0], k, 'g', -1, 64))
	case bool:
		if k {
			return fnvBytes(h, []byte{1})
		}
		return fnvBytes(h, []byte{0})
	case nil:
		return h
	case []any:
		for _, e := range k {
			v := HashKey(e)
			for i := 0; i < 8; i++ {
				h = (h ^ uint64(byte(v>>(8*i)))) * fnvPrime
			}
		}
		return h
	default:
		return fnvString(h, fmt.Sprint(k))
	}
}

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
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
