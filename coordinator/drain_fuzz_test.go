package coordinator

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzDrainReason: whatever a worker sends as its drain reason, what is
// logged and shown is valid UTF-8 without control characters, bounded,
// and never empty.
func FuzzDrainReason(f *testing.F) {
	for _, s := range []string{"SIGTERM", "", "   ", "a\nb\x00c", "\xff\xfe", strings.Repeat("é", 100), strings.Repeat("x", 1000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := drainReason(in)
		if !utf8.ValidString(out) || len(out) > maxDrainReason || strings.TrimSpace(out) == "" || strings.IndexFunc(out, unicode.IsControl) >= 0 {
			t.Fatalf("drainReason(%q) = %q", in, out)
		}
		if in == "SIGTERM" && out != in {
			t.Fatalf("a plain reason changed: %q", out)
		}
	})
}
