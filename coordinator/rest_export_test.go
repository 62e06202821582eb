package coordinator

import (
	"sort"
	"strings"
)

// Routes lists every route the coordinator serves as "METHOD path", with
// the path as docs/rest.md writes it ("/" and "/ui/{file}" for the UI).
func Routes(c *Coordinator) []string {
	var out []string
	for _, r := range c.routes() {
		p := r.path
		switch {
		case p == "/{$}":
			p = "/"
		case strings.HasSuffix(p, "/"):
			p += "{file}"
		}
		for m := range r.methods {
			out = append(out, m+" "+p)
		}
	}
	sort.Strings(out)
	return out
}
