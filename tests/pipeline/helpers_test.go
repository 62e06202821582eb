package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/internal/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// t0 is the event time of sequence record 0 ({"id": n, "ts": t0 + n}).
const t0 = accesslog.DefaultStart

// spec fills {{name}} placeholders.
func spec(text string, kv ...string) string {
	r := strings.NewReplacer(kv...)
	return r.Replace(text)
}

// readLines returns the lines of a file sink's output file, a JSON object
// with its keys sorted as line renders it (the sink writes the record's
// field order, which TestTransforms checks with readExactLines); a missing
// file reads as no lines.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	lines := readExactLines(t, path)
	for i, l := range lines {
		lines[i] = canonical(l)
	}
	return lines
}

// canonical renders a JSON object with sorted keys, as line does; anything
// else (a raw-format line) is returned as it is.
func canonical(s string) string {
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if !strings.HasPrefix(s, "{") || dec.Decode(&obj) != nil {
		return s
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// readExactLines returns the lines of a file as written.
func readExactLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readSubtasks returns the lines written by each of the par subtasks of a
// file sink at path ("<path>-<i>" when par > 1), and fails when any other
// file sits next to them.
func readSubtasks(t *testing.T, path string, par int) [][]string {
	t.Helper()
	if par == 1 {
		return [][]string{readLines(t, path)}
	}
	out := make([][]string, par)
	for i := range par {
		out[i] = readLines(t, fmt.Sprintf("%s-%d", path, i))
	}
	extra, _ := filepath.Glob(path + "-*")
	if len(extra) > par {
		t.Fatalf("unexpected sink files: %v", extra)
	}
	return out
}

func concat(parts [][]string) []string {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// line renders fields the way the JSON file sink does: one object with
// sorted keys.
func line(fields map[string]any) string {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// sameLines fails unless got and want hold the same lines, ignoring order.
func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if slices.Equal(g, w) {
		return
	}
	t.Fatalf("%s: got %d lines, want %d\n%s", what, len(g), len(w), diff(g, w))
}

// equalLines fails unless got equals want in order.
func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s (in order): got %d lines, want %d\ngot:  %s\nwant: %s", what, len(got), len(want), head(got), head(want))
	}
}

func head(s []string) string {
	if len(s) > 12 {
		return strings.Join(s[:12], " ") + " …"
	}
	return strings.Join(s, " ")
}

// diff lists lines missing from and unexpected in sorted got.
func diff(got, want []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var b strings.Builder
	n := 0
	for _, l := range want {
		if count[l] > 0 && n < 20 {
			fmt.Fprintf(&b, "  missing (x%d): %s\n", count[l], l)
			count[l] = 0
			n++
		}
	}
	for _, l := range got {
		if count[l] < 0 && n < 40 {
			fmt.Fprintf(&b, "  unexpected (x%d): %s\n", -count[l], l)
			count[l] = 0
			n++
		}
	}
	return b.String()
}
