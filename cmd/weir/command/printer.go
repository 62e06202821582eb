package command

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// printer writes a listing as an aligned table or as JSON (-o json).
type printer struct {
	w      io.Writer
	format string
}

func (g *globals) printer() (*printer, error) {
	switch g.output {
	case "", "table":
		return &printer{w: g.stdout, format: "table"}, nil
	case "json":
		return &printer{w: g.stdout, format: "json"}, nil
	}
	return nil, usagef("-o %q: want table or json", g.output)
}

// print writes v as JSON, or header and rows as a table.
func (p *printer) print(v any, header []string, rows [][]string) error {
	if p.format == "json" {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if header != nil {
		for i, h := range header {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, h)
		}
		fmt.Fprintln(tw)
	}
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
