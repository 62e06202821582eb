package command

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Help prints each flag's default once: a usage that spells out its
// default ("(default from WEIR_COORDINATOR, else http://…)") followed by
// cobra's own "(default "http://…")" said it twice.
func TestHelpPrintsEachDefaultOnce(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		for _, line := range strings.Split(c.LocalFlags().FlagUsages(), "\n") {
			if strings.Count(line, "(default") > 1 {
				t.Errorf("%s: %s", c.CommandPath(), strings.TrimSpace(line))
			}
		}
	}
	walk(newRoot(&globals{}))
}

// weir worker's --coordinator is the old name of --coordinator-grpc (the
// client verbs' --coordinator is a REST URL): it still sets the address,
// hidden from --help, and warns on stderr, never on stdout.
func TestWorkerCoordinatorFlagIsADeprecatedAlias(t *testing.T) {
	r := mustRun(t, 0, "worker", "--help")
	if !strings.Contains(r.stdout, "--coordinator-grpc string") || strings.Contains(r.stdout, "--coordinator string") {
		t.Errorf("worker --help: want --coordinator-grpc and no --coordinator:\n%s", r.stdout)
	}
	// An invalid --log-level stops the verb right after the flags are
	// read, before a worker starts.
	r = mustRun(t, 2, "worker", "--coordinator", "10.0.0.1:6123", "--log-level", "loud")
	if !strings.Contains(r.stderr, "warning: --coordinator is deprecated and will go; use --coordinator-grpc") || r.stdout != "" {
		t.Errorf("worker --coordinator: want the warning on stderr only:\n%s", r)
	}
	r = mustRun(t, 2, "worker", "--coordinator-grpc", "10.0.0.1:6123", "--log-level", "loud")
	if strings.Contains(r.stderr, "deprecated") {
		t.Errorf("worker --coordinator-grpc warned:\n%s", r)
	}

	root := newRoot(&globals{})
	w, _, err := root.Find([]string{"worker"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ParseFlags([]string{"--coordinator", "10.0.0.1:6123"}); err != nil {
		t.Fatal(err)
	}
	if got := w.Flags().Lookup("coordinator-grpc").Value.String(); got != "10.0.0.1:6123" {
		t.Errorf("--coordinator set --coordinator-grpc to %q", got)
	}
}
