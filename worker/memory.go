package worker

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"unicode"

	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// MemoryLimitAuto is the --memory-limit default: the cgroup's limit, none
// without one.
const MemoryLimitAuto = "auto"

// DefaultCgroupRoot is where the worker looks for its cgroup's limit.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// cgroupUnlimited: cgroup v1 reports "no limit" as a huge number (the
// largest page-aligned int64); anything this large is no limit.
const cgroupUnlimited = 1 << 62

// ResolveMemoryLimit says which memory limit a worker runs with, in bytes
// (0: none), and where it comes from. A GOMEMLIMIT in the environment
// wins (the Go runtime has applied it already). Otherwise flag is "auto"
// (the cgroup's limit under cgroupRoot, v2 memory.max or v1
// memory/memory.limit_in_bytes), "none", or a size: bytes, or a number
// with a unit (KiB, MiB, GiB, TiB; KB, MB, GB, TB; K, M, G, T as binary).
func ResolveMemoryLimit(flag string, gomemlimit string, cgroupRoot string) (limit int64, source string, err error) {
	if gomemlimit != "" {
		if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
			return l, "GOMEMLIMIT", nil
		}
		return 0, "GOMEMLIMIT", nil
	}
	switch strings.ToLower(strings.TrimSpace(flag)) {
	case "", MemoryLimitAuto:
		l, file, err := cgroupMemoryLimit(cgroupRoot)
		if err != nil {
			return 0, "", err
		}
		if l == 0 {
			return 0, "none (no cgroup limit)", nil
		}
		return l, file, nil
	case "none", "0":
		return 0, "none", nil
	}
	l, err := ParseSize(flag)
	if err != nil {
		return 0, "", fmt.Errorf("--memory-limit %q: %w", flag, err)
	}
	return l, "--memory-limit", nil
}

// ApplyMemoryLimit makes limit the Go runtime's soft memory limit, as
// GOMEMLIMIT would: the GC works harder as the heap nears it instead of
// letting the process grow into the kernel's OOM killer. It does nothing
// when GOMEMLIMIT is set or limit is 0.
func ApplyMemoryLimit(limit int64, gomemlimit string) {
	if gomemlimit == "" && limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}

// cgroupMemoryLimit reads the cgroup's memory limit under root: v2 first,
// then v1. 0: no limit (or no cgroup memory controller visible); file is
// the file it came from.
func cgroupMemoryLimit(root string) (limit int64, file string, err error) {
	for _, f := range []string{filepath.Join(root, "memory.max"), filepath.Join(root, "memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("memory limit: %w", err)
		}
		n, err := parseCgroupLimit(string(b))
		if err != nil {
			return 0, "", fmt.Errorf("memory limit: %s: %w", f, err)
		}
		return n, f, nil
	}
	return 0, "", nil
}

// parseCgroupLimit reads a cgroup memory limit file's content; 0: none.
func parseCgroupLimit(content string) (int64, error) {
	s := strings.TrimSpace(content)
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("holds %q, want a byte count or \"max\"", s)
	}
	if n >= cgroupUnlimited {
		return 0, nil
	}
	return n, nil
}

// ParseSize parses a byte size: "1048576", "512MiB", "1.5GiB", "2G".
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a size such as 1536MiB or 2GiB, got %q", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q in %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", unit, s)
	}
	b := v * mult
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(b), nil
}

// memorySamples are the runtime/metrics the heartbeat reports.
var memorySampleNames = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
}

// readMemory reads the Go runtime's memory now. total is what the runtime
// holds from the OS (mapped minus released to it), the figure a soft
// memory limit bounds. Cheap: no stop-the-world.
func readMemory(limit int64) *controlpb.MemoryStats {
	s := make([]metrics.Sample, len(memorySampleNames))
	for i, n := range memorySampleNames {
		s[i].Name = n
	}
	metrics.Read(s)
	val := func(i int) int64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(s[i].Value.Uint64())
	}
	return &controlpb.MemoryStats{HeapLiveBytes: val(0), TotalBytes: val(1) - val(2), LimitBytes: limit}
}
