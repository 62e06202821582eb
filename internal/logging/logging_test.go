package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestJSONLinesHaveEachKeyOnce: loggers derived in layers, as a worker,
// its task and an operator derive them, write each key once, with the
// outermost value; every line is a JSON object.
func TestJSONLinesHaveEachKeyOnce(t *testing.T) {
	var buf bytes.Buffer
	root, err := New(&buf, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	worker := root.With("component", "worker", "worker", "w1")
	task := worker.With("job", "j1", "subtask", 1)
	again := task.With("job", "j1", "subtask", 1, "node", "src") // the task runner adds them again
	again.Info("opened", "subtask", 1, "topic", "in", "topic", "dup", "worker", "w1")
	again.WithGroup("kafka").With("topic", "in").Info("fetch", "topic", "again", "partition", 3)
	root.Debug("plain", slog.Group("", slog.String("a", "1"), slog.String("a", "2")))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		// Count keys as written: a duplicate key would still decode.
		dec := json.NewDecoder(strings.NewReader(l))
		counts := map[string]int{}
		if _, err := dec.Token(); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		for dec.More() {
			k, _ := dec.Token()
			counts[k.(string)]++
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
		}
		for k, n := range counts {
			if n != 1 {
				t.Errorf("key %q %d times in %s", k, n, l)
			}
		}
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["topic"] != "in" || first["subtask"] != float64(1) || first["node"] != "src" || first["component"] != "worker" || first["msg"] != "opened" {
		t.Errorf("first line %v", first)
	}
	var second struct {
		Kafka map[string]any `json:"kafka"`
		Job   string         `json:"job"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if second.Kafka["topic"] != "in" || second.Kafka["partition"] != float64(3) || second.Job != "j1" {
		t.Errorf("second line %s", lines[1])
	}
	if !strings.Contains(lines[2], `"a":"1"`) || strings.Contains(lines[2], `"a":"2"`) {
		t.Errorf("third line %s", lines[2])
	}
}

func TestTextLinesHaveEachKeyOnce(t *testing.T) {
	var buf bytes.Buffer
	root, err := New(&buf, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	root.With("subtask", 0).With("subtask", 0).Info("x", "subtask", 0)
	root.Debug("hidden")
	if got := buf.String(); strings.Count(got, "subtask=") != 1 || strings.Contains(got, "hidden") {
		t.Errorf("%q", got)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "loud", "text"); err == nil || !strings.Contains(err.Error(), `log level "loud"`) {
		t.Errorf("level: %v", err)
	}
	if _, err := New(&bytes.Buffer{}, "info", "xml"); err == nil || !strings.Contains(err.Error(), `log format "xml": want text or json`) {
		t.Errorf("format: %v", err)
	}
}
