package pipeline

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/cluster"
)

var sentences = []string{"the quick brown fox", "the lazy dog", "a quick dog and a fox", "the end"}

// Word count over event time: sentences are split into words, keyed by
// word and counted per 10 ms tumbling window, at parallelism 2 over two
// workers. Each (word, window) count is exact and each word is written by
// exactly one sink subtask (the one its key group hashes to).
func TestWordCount(t *testing.T) {
	const count = 200
	c := cluster.New(t, cluster.Config{Workers: 2, Slots: 4})
	out := filepath.Join(t.TempDir(), "counts")
	list := "['" + strings.Join(sentences, "', '") + "']"
	id := c.Submit(t, spec(`name: wordcount
parallelism: 2
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: {{count}}}
      event_time: {field: ts}
  - name: sentence
    select: {text: "{{list}}[id % 4]", ts: ts}
  - name: words
    flat_map: {split: text, as: word}
  - name: by-word
    key_by: word
  - name: counts
    window:
      tumbling: 10ms
      aggregates: {n: count()}
  - name: sink
    sink:
      file: {path: {{out}}}
`, "{{out}}", out, "{{list}}", list, "{{count}}", fmt.Sprint(count)))
	j := c.WaitState(t, id, "FINISHED", 30*time.Second)

	type wk struct {
		word  string
		start int64
	}
	want := map[wk]int64{}
	for n := int64(0); n < count; n++ {
		ts := t0 + n
		for _, w := range strings.Fields(sentences[n%4]) {
			want[wk{w, ts - ts%10}]++
		}
	}
	var wantLines []string
	for k, n := range want {
		wantLines = append(wantLines, line(map[string]any{"word": k.word, "window_start": k.start, "window_end": k.start + 10, "n": n}))
	}
	got := readSubtasks(t, out, 2)
	sameLines(t, "word counts\n"+cluster.Describe(j), concat(got), wantLines)
	seen := map[string]int{}
	for sub, lines := range got {
		if len(lines) == 0 {
			t.Errorf("sink subtask %d wrote nothing: keys not spread", sub)
		}
		for _, l := range lines {
			w := l[strings.Index(l, `"word":"`)+8:]
			w = w[:strings.IndexByte(w, '"')]
			if s, ok := seen[w]; ok && s != sub {
				t.Errorf("word %q written by subtasks %d and %d", w, s, sub)
			}
			seen[w] = sub
		}
	}
}
