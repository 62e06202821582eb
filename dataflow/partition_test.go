package dataflow

import (
	"hash/fnv"
	"testing"
)

// The key hash is part of the checkpoint format (key groups): it must not
// change. These values pin it to FNV-1a followed by mix64.
func TestHashKeyStable(t *testing.T) {
	ref := func(b []byte) uint64 {
		h := fnv.New64a()
		h.Write(b)
		return mix64(h.Sum64())
	}
	for _, tc := range []struct {
		key  any
		want uint64
	}{
		{"10.1.2.3", ref([]byte("10.1.2.3"))},
		{"", ref(nil)},
		{int64(42), ref([]byte("42"))},
		{float64(42), ref([]byte("42"))},
		{1.5, ref([]byte("1.5"))},
		{true, ref([]byte{1})},
		{nil, ref(nil)},
	} {
		if got := HashKey(tc.key); got != tc.want {
			t.Errorf("HashKey(%#v) = %d, want %d", tc.key, got, tc.want)
		}
	}
	if HashKey(int64(7)) != HashKey(7.0) {
		t.Error("an integral float hashes unlike the integer")
	}
}

func TestKeyGroupRanges(t *testing.T) {
	for _, maxPar := range []int{1, 7, 128} {
		for n := 1; n <= maxPar && n <= 16; n++ {
			next := 0
			for i := 0; i < n; i++ {
				r := KeyGroupRangeFor(maxPar, n, i)
				if r.Start != next || r.End < r.Start-1 {
					t.Fatalf("max %d n %d subtask %d: range %v, want start %d", maxPar, n, i, r, next)
				}
				for g := r.Start; g <= r.End; g++ {
					if s := SubtaskForKeyGroup(maxPar, n, g); s != i {
						t.Fatalf("max %d n %d: group %d in range of %d but routed to %d", maxPar, n, g, i, s)
					}
				}
				next = r.End + 1
			}
			if next != maxPar {
				t.Fatalf("max %d n %d: ranges cover %d groups", maxPar, n, next)
			}
		}
	}
}

func BenchmarkHashKeyString(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = KeyGroup("192.168.100.200", 128)
	}
}
