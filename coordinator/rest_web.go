package coordinator

import (
	"embed"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/weir-stream/weir/coordinator/api"
)

// The web UI: plain HTML, CSS and JavaScript modules in coordinator/web,
// embedded in the binary so the status page works without network access.
// It reads the same /api/v1 as the CLI (docs/ui.md).
//
//go:embed web
var webFiles embed.FS

var webRoot = func() fs.FS {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return sub
}()

// handleIndex serves GET / (the single page; routes live in the URL
// fragment).
func handleIndex(w http.ResponseWriter, r *http.Request) {
	serveWebFile(w, r, "index.html")
}

// handleWebAsset serves GET /ui/{file}: the page's scripts and styles.
func handleWebAsset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name == "" || name == "index.html" || strings.Contains(name, "..") {
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: fmt.Sprintf("no such UI file: %s", r.URL.Path)})
		return
	}
	serveWebFile(w, r, name)
}

func serveWebFile(w http.ResponseWriter, r *http.Request, name string) {
	data, err := fs.ReadFile(webRoot, name)
	if err != nil {
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: fmt.Sprintf("no such UI file: %s", r.URL.Path)})
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8" // module scripts need a JavaScript type
	}
	w.Header().Set("Content-Type", ct)
	// The files change with the binary only; revalidate so an upgrade shows.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}
