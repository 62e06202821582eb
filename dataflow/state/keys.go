package state

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// NormalizeKey returns key in the form state keeps it: nil, bool, int64,
// float64 or string, with the other Go integer types widened to int64 (so
// 42 as an int and as an int64 are one key). Anything else, and NaN, is an
// error.
func NormalizeKey(key any) (any, error) {
	switch k := key.(type) {
	case nil, bool, int64, string:
		return key, nil
	case float64:
		if math.IsNaN(k) {
			return nil, fmt.Errorf("key is NaN")
		}
		return key, nil
	case int:
		return int64(k), nil
	case int8:
		return int64(k), nil
	case int16:
		return int64(k), nil
	case int32:
		return int64(k), nil
	case uint8:
		return int64(k), nil
	case uint16:
		return int64(k), nil
	case uint32:
		return int64(k), nil
	case float32:
		return NormalizeKey(float64(k))
	}
	return nil, fmt.Errorf("key must be a string, number, bool or null, got %T", key)
}

// CompareKeys orders normalized keys: null, then false and true, then
// numbers by value (an integer before an equal float), then strings. Timers
// with the same time fire in this order of their keys, and snapshots list
// keys in it, so both are the same in every run.
func CompareKeys(a, b any) int {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case string:
		return strings.Compare(x, b.(string))
	case int64:
		switch y := b.(type) {
		case int64:
			return cmp.Compare(x, y)
		case float64:
			if c := cmp.Compare(float64(x), y); c != 0 {
				return c
			}
			return -1
		}
	case float64:
		switch y := b.(type) {
		case float64:
			return cmp.Compare(x, y)
		case int64:
			if c := cmp.Compare(x, float64(y)); c != 0 {
				return c
			}
			return 1
		}
	}
	return 0
}

func keyRank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case int64, float64:
		return 2
	case string:
		return 3
	}
	return 4
}

// skey addresses the state of one key in one namespace.
type skey struct {
	key any
	ns  int64
}

func compareSKeys(a, b skey) int {
	if c := CompareKeys(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.ns, b.ns)
}

// identical reports whether a and b are the same interface value, word for
// word: the same boxed key, as when an operator reads and then writes the
// current key's state. It is a cheap test for a cache of the entry looked
// up last; equal keys boxed apart are not identical, and the cache then
// misses and falls back to the map, which compares them properly. It
// saves the full comparison (a string compare for string keys) on every
// miss, which costs as much as the hit saves.
func identical(a, b skey) bool {
	type eface struct{ typ, data unsafe.Pointer }
	return a.ns == b.ns && *(*eface)(unsafe.Pointer(&a.key)) == *(*eface)(unsafe.Pointer(&b.key))
}
