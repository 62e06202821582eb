package accesslog

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func digest(t *testing.T, cfg Config) uint64 {
	t.Helper()
	h := fnv.New64a()
	err := Generate(cfg, func(i int64, p int32, e Event) error {
		b := e.AppendJSON(nil)
		b = append(b, byte(p))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h.Sum64()
}

func TestGenerateDeterministic(t *testing.T) {
	a := digest(t, Config{Seed: 7, Events: 20000, Partitions: 4})
	b := digest(t, Config{Seed: 7, Events: 20000, Partitions: 4})
	c := digest(t, Config{Seed: 8, Events: 20000, Partitions: 4})
	if a != b {
		t.Fatal("same seed gave different logs")
	}
	if a == c {
		t.Fatal("different seeds gave the same log")
	}
	// Random access gives the same events as sequential generation.
	g := NewGenerator(Config{Seed: 7, Events: 20000, Partitions: 4})
	var seq []Event
	_ = Generate(Config{Seed: 7, Events: 20000, Partitions: 4}, func(i int64, p int32, e Event) error {
		seq = append(seq, e)
		return nil
	})
	for _, i := range []int64{19999, 0, 12345, 3} {
		if e, _, _ := g.At(i); e != seq[i] {
			t.Fatalf("At(%d) = %+v, sequential %+v", i, e, seq[i])
		}
	}
}

func TestGenerateShape(t *testing.T) {
	const n = 200000
	cfg := Config{Seed: 1, Events: n, Partitions: 6}
	g := NewGenerator(cfg)
	maxSoFar := make([]int64, 6)
	for p := range maxSoFar {
		maxSoFar[p] = -1 << 60
	}
	var globalMax int64 = -1 << 60
	var late, disordered, notFound int
	perIP := map[string]int{}
	for i := int64(0); i < n; i++ {
		e, p, isLate := g.At(i)
		if p != Partition(e.IP, 6) {
			t.Fatalf("event %d: partition %d, Partition(ip) = %d", i, p, Partition(e.IP, 6))
		}
		if e.Bytes < 100 || e.Bytes > 10000 {
			t.Fatalf("event %d: bytes %d out of 100..10000", i, e.Bytes)
		}
		base := DefaultStart + i*1000/DefaultEventsPerSecond
		if isLate {
			late++
			if i < n/10 {
				t.Fatalf("event %d is late within the first 10%%", i)
			}
			if e.Ts != base-LateBy {
				t.Fatalf("late event %d: ts %d, want %d", i, e.Ts, base-LateBy)
			}
			continue
		}
		if e.Ts < globalMax {
			disordered++
		}
		if i > 0 && (e.Ts < maxSoFar[p]-MaxDisorder || e.Ts < globalMax-MaxDisorder) {
			t.Fatalf("event %d: ts %d more than %d ms behind %d", i, e.Ts, MaxDisorder, maxSoFar[p])
		}
		maxSoFar[p] = max(maxSoFar[p], e.Ts)
		globalMax = max(globalMax, e.Ts)
		if e.Status == 404 {
			notFound++
		}
		perIP[e.IP]++
	}
	if late < n/1000/2 || late > n/1000*2 {
		t.Errorf("late events: %d of %d, want about 0.1%%", late, n)
	}
	if disordered < n/50 || disordered > n/10 {
		t.Errorf("out-of-order events: %d of %d, want a few percent", disordered, n)
	}
	if notFound < n*4/100 || notFound > n*6/100 {
		t.Errorf("404s: %d of %d, want about 5%%", notFound, n)
	}
	counts := make([]int, 0, len(perIP))
	for _, c := range perIP {
		counts = append(counts, c)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	top := 0
	for _, c := range counts[:10] {
		top += c
	}
	if top < n*3/10 {
		t.Errorf("top 10 addresses have %d of %d events, want a hot few", top, n)
	}
	if len(perIP) < 1000 {
		t.Errorf("only %d distinct addresses", len(perIP))
	}
}

func TestPartitionStableAcrossConfigs(t *testing.T) {
	// An address's partition depends on the address and the partition
	// count only, not on the seed.
	ips := map[string]int32{}
	for _, seed := range []int64{1, 2, 3} {
		_ = Generate(Config{Seed: seed, Events: 5000, Partitions: 5}, func(i int64, p int32, e Event) error {
			if q, ok := ips[e.IP]; ok && q != p {
				t.Fatalf("address %s in partition %d and %d", e.IP, q, p)
			}
			ips[e.IP] = p
			return nil
		})
	}
	if Partition("10.0.0.1", 5) != Partition("10.0.0.1", 5) || Partition("x", 0) != 0 {
		t.Fatal("Partition is not stable")
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	g := NewGenerator(Config{Seed: 3})
	for i := int64(0); i < 2000; i++ {
		e, _, _ := g.At(i)
		var back Event
		if err := json.Unmarshal(e.AppendJSON(nil), &back); err != nil || back != e {
			t.Fatalf("event %d: %s round-trips to %+v (%v)", i, e.AppendJSON(nil), back, err)
		}
		want, _ := json.Marshal(e)
		if string(want) != string(e.AppendJSON(nil)) {
			t.Fatalf("AppendJSON %s, json.Marshal %s", e.AppendJSON(nil), want)
		}
	}
}

func TestGenerateStopsOnError(t *testing.T) {
	n := 0
	err := Generate(Config{Seed: 1}, func(i int64, p int32, e Event) error {
		n++
		if i == 99 {
			return errStop
		}
		return nil
	})
	if err != errStop || n != 100 {
		t.Fatalf("err %v after %d events", err, n)
	}
	if err := Generate(Config{Events: -1}, nil); err == nil {
		t.Fatal("negative events accepted")
	}
}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }

var errStop error = stopErr{}

func BenchmarkGeneratorAt(b *testing.B) {
	g := NewGenerator(Config{Seed: 1, Partitions: 8})
	var sink int
	for i := 0; b.Loop(); i++ {
		e, p, _ := g.At(int64(i))
		sink += e.Bytes + int(p)
	}
	_ = sink
}

// The guide table only narrows the search: every draw must get the rank a
// search of the whole CDF gives, at the table's bucket edges and at the
// CDF's own values too.
func TestZipfRankMatchesFullSearch(t *testing.T) {
	full := func(u float64) int {
		lo, hi := 0, NumIPs-1
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if zipfCDF[m] < u {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo
	}
	var us []float64
	for j := range zipfGuideSize {
		e := float64(j) / zipfGuideSize
		us = append(us, e, math.Nextafter(e, 1), math.Nextafter(e, -1))
	}
	for _, c := range zipfCDF {
		us = append(us, c, math.Nextafter(c, 1), math.Nextafter(c, -1))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		us = append(us, float64(r.Uint64()>>11)*(1.0/(1<<53)))
	}
	for _, u := range us {
		if u < 0 || u >= 1 {
			continue
		}
		if got, want := zipfRank(u), full(u); got != want {
			t.Fatalf("u=%v: rank %d, want %d", u, got, want)
		}
	}
}
