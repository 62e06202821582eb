package command

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestCLIDocCoversEveryVerbAndFlag keeps docs/cli.md in step with the cobra
// definitions: every verb has a "## weir VERB" section, and that section has
// a table line for each of its flags that names the flag (`--name`, and
// `-x` when it has a shorthand) and its default as cobra renders it.
func TestCLIDocCoversEveryVerbAndFlag(t *testing.T) {
	t.Setenv("WEIR_COORDINATOR", "") // the documented default, not this shell's
	t.Setenv("KAFKA_BROKERS", "")
	data, err := os.ReadFile("../../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{} // "weir dev kafka" → its text
	var name string
	for _, line := range strings.Split(string(data), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			name = strings.TrimSpace(h)
			continue
		}
		if name != "" {
			sections[name] += line + "\n"
		}
	}

	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.HasSubCommands() && !c.HasAvailableLocalFlags() && c.HasParent() {
			// A group verb (loadgen, verify): documented through its
			// sub-verbs, and in the verb table.
			if !strings.Contains(string(data), "`"+c.CommandPath()+" ") {
				t.Errorf("docs/cli.md does not mention %q", c.CommandPath())
			}
			return
		}
		if !c.HasParent() {
			return
		}
		sec, ok := sections[c.CommandPath()]
		if !ok {
			t.Errorf("docs/cli.md has no section \"## %s\"", c.CommandPath())
			return
		}
		if !strings.Contains(sec, "\n"+c.CommandPath()) {
			t.Errorf("section %q lacks its synopsis line %q", c.CommandPath(), c.CommandPath()+" …")
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			var row string
			for _, line := range strings.Split(sec, "\n") {
				if strings.HasPrefix(line, "| `--"+f.Name+"`") {
					row = line
					break
				}
			}
			if row == "" {
				t.Errorf("section %q has no table row for --%s", c.CommandPath(), f.Name)
				return
			}
			if f.Shorthand != "" && !strings.Contains(row, "`-"+f.Shorthand+"`") {
				t.Errorf("%s --%s: the row does not name its shorthand -%s:\n%s", c.CommandPath(), f.Name, f.Shorthand, row)
			}
			cells := strings.Split(row, "|")
			if f.DefValue != "" && (len(cells) < 3 || !strings.Contains(cells[2], "`"+f.DefValue+"`")) {
				t.Errorf("%s --%s: the default column does not say `%s`:\n%s", c.CommandPath(), f.Name, f.DefValue, row)
			}
		})
	}
	walk(newRoot(&globals{}))

	for _, want := range []string{"WEIR_COORDINATOR", "Exit codes", "`-o json`", "| `0` |", "| `1` |", "| `2` |"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("docs/cli.md does not mention %s", want)
		}
	}
}
