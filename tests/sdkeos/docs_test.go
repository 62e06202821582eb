package sdkeos

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// TestSessionDocsSpec runs the ip-sessions job of docs/sdk-examples.md as
// it is written there (the broker's address aside) and checks its output
// is sessions: per IP, each at least the gap long, none overlapping the
// next, every event but a few late ones in one.
func TestSessionDocsSpec(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a weir binary and runs a multi-process cluster")
	}
	doc, err := os.ReadFile("../../docs/sdk-examples.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(name: ip-sessions\n.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/sdk-examples.md has no ip-sessions job")
	}
	c := proc.StartCluster(t, examplesBinary(t), 1, 4)
	spec := strings.ReplaceAll(string(m[1]), "127.0.0.1:9092", c.KafkaAddr)
	path := filepath.Join(t.TempDir(), "ip-sessions.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	id := c.Submit(path)
	if j := c.WaitEnded(id, 2*time.Minute); j.State != "FINISHED" {
		t.Fatalf("ip-sessions: %s %s", j.State, j.FailureCause)
	}
	type session struct {
		Key                       string
		Start, End, Events, Total int64
	}
	var all []session
	for _, l := range readCommitted(t, c.KafkaAddr, "ip-sessions", func(v []byte) (string, error) { return string(v), nil }) {
		var s session
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		all = append(all, s)
	}
	const gap, count = 5_000, 20_000
	byKey := map[string][]session{}
	var events int64
	for _, s := range all {
		if s.Key == "" || s.Events < 1 || s.End-s.Start < gap || s.Total < 0 {
			t.Fatalf("not a session with gap 5s: %+v", s)
		}
		byKey[s.Key] = append(byKey[s.Key], s)
		events += s.Events
	}
	for k, ss := range byKey {
		slices.SortFunc(ss, func(a, b session) int { return int(a.Start - b.Start) })
		for i := 1; i < len(ss); i++ {
			if ss[i].Start < ss[i-1].End {
				t.Fatalf("key %s: sessions %+v and %+v overlap", k, ss[i-1], ss[i])
			}
		}
	}
	if events > count || events < count*99/100 {
		t.Fatalf("%d sessions hold %d events of %d", len(all), events, count)
	}
	t.Logf("%d sessions of %d IPs hold %d of %d events; one: %s", len(all), len(byKey), events, count, readOne(t, c.KafkaAddr))
}

func readOne(t *testing.T, addr string) string {
	ls := readCommitted(t, addr, "ip-sessions", func(v []byte) (string, error) { return string(v), nil })
	for _, l := range ls {
		if strings.Contains(l, `"events":4`) {
			return l
		}
	}
	return ls[0]
}
