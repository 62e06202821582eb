package command

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/spf13/cobra"
)

// progress reports how a long operation goes (loadgen, verify --wait,
// savepoint --wait) on stderr, one line rewritten in place, so that stdout
// keeps only the result. It is on when stderr is a terminal or with
// --progress, off with --progress=false: a log file or a pipe gets no
// carriage returns unless asked for.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	on   bool
	last int // length of the line on screen, to blank a shorter one
}

// addProgressFlag adds --progress to a verb with a long operation.
func addProgressFlag(c *cobra.Command, on *bool) {
	c.Flags().BoolVar(on, "progress", false, "print progress to stderr (default: when stderr is a terminal)")
}

// newProgress decides whether to report: the flag when given, else
// whether stderr is a terminal.
func (g *globals) newProgress(cmd *cobra.Command, flag bool) *progress {
	on := flag
	if !cmd.Flags().Changed("progress") {
		on = isTerminal(g.stderr)
	}
	return &progress{w: g.stderr, on: on}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update replaces the progress line.
func (p *progress) update(format string, a ...any) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf(format, a...)
	pad := ""
	if n := p.last - len(line); n > 0 {
		pad = fmt.Sprintf("%*s", n, "")
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.last = len(line)
}

// done ends the progress line, so what follows starts on a line of its own.
func (p *progress) done() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last > 0 {
		fmt.Fprintln(p.w)
		p.last = 0
	}
}
