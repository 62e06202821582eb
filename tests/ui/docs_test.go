package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsHaveScreenshots: docs/ui.md shows a screenshot of every page, and
// each one it references exists in docs/ui/.
func TestDocsHaveScreenshots(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ui.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"overview", "job", "job-broker-down", "checkpoints", "checkpoint", "restarts", "kafka"} {
		ref := "(ui/" + page + ".png)"
		if !strings.Contains(string(doc), ref) {
			t.Errorf("docs/ui.md does not show %s", ref)
		}
		fi, err := os.Stat(filepath.Join("..", "..", "docs", "ui", page+".png"))
		if err != nil || fi.Size() < 1000 {
			t.Errorf("docs/ui/%s.png: %v (regenerate: WEIR_UI_DOCS=1 go test -run TestWebUI ./tests/ui)", page, err)
		}
	}
}
