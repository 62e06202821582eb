package worker

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    int64
		wantErr string
	}{
		{name: "no cgroup files", want: 0},
		{name: "v2 limit", files: map[string]string{"memory.max": "1610612736\n"}, want: 1610612736},
		{name: "v2 max", files: map[string]string{"memory.max": "max\n"}, want: 0},
		{name: "v1 limit", files: map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, want: 536870912},
		{name: "v1 unlimited", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, want: 0},
		{name: "v2 wins over v1", files: map[string]string{"memory.max": "1000", "memory/memory.limit_in_bytes": "2000"}, want: 1000},
		{name: "garbage", files: map[string]string{"memory.max": "lots"}, wantErr: `holds "lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for f, c := range tc.files {
				writeFile(t, filepath.Join(root, f), c)
			}
			got, _, err := cgroupMemoryLimit(root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error with %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestResolveMemoryLimit(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "memory.max"), "2147483648\n")
	for _, tc := range []struct {
		flag    string
		want    int64
		source  string
		wantErr string
	}{
		{flag: "auto", want: 2 << 30, source: "memory.max"},
		{flag: "", want: 2 << 30, source: "memory.max"},
		{flag: "none", want: 0, source: "none"},
		{flag: "1536MiB", want: 1536 << 20, source: "--memory-limit"},
		{flag: "1.5GiB", want: 1536 << 20, source: "--memory-limit"},
		{flag: "2G", want: 2 << 30, source: "--memory-limit"},
		{flag: "1GB", want: 1e9, source: "--memory-limit"},
		{flag: "4096", want: 4096, source: "--memory-limit"},
		{flag: "12 parsecs", wantErr: `unknown unit "parsecs"`},
		{flag: "-1GiB", wantErr: "want a size"},
	} {
		got, source, err := ResolveMemoryLimit(tc.flag, "", root)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--memory-limit") {
				t.Errorf("%q: want an error naming the flag with %q, got %v", tc.flag, tc.wantErr, err)
			}
			continue
		}
		if err != nil || got != tc.want || !strings.Contains(source, tc.source) {
			t.Errorf("%q: got %d from %q (%v); want %d from %q", tc.flag, got, source, err, tc.want, tc.source)
		}
	}
	// No cgroup limit: none.
	if got, _, err := ResolveMemoryLimit("auto", "", t.TempDir()); err != nil || got != 0 {
		t.Errorf("auto without a cgroup: got %d, %v", got, err)
	}
	// GOMEMLIMIT wins: what the runtime has (none in tests).
	if _, source, err := ResolveMemoryLimit("1GiB", "512MiB", root); err != nil || source != "GOMEMLIMIT" {
		t.Errorf("with GOMEMLIMIT: source %q, %v", source, err)
	}
}

func TestReadMemory(t *testing.T) {
	runtime.GC() // the live heap is known after a GC
	m := readMemory(1 << 30)
	if m.GetHeapLiveBytes() <= 0 || m.GetTotalBytes() < m.GetHeapLiveBytes() || m.GetLimitBytes() != 1<<30 {
		t.Fatalf("implausible memory figures: %+v", m)
	}
}

// FuzzMemoryLimitInput: the flag and the cgroup file are outside input;
// neither panics, and what is accepted is a byte count, never negative.
func FuzzMemoryLimitInput(f *testing.F) {
	for _, s := range []string{"1536MiB", "1.5GiB", "2G", "1GB", "4096", "none", "-1", "1e400", "9223372036854775807", "max\n", " 12 kib", "GiB", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if n, err := parseCgroupLimit(s); err == nil && n < 0 {
			t.Fatalf("parseCgroupLimit(%q) = %d", s, n)
		}
	})
}
