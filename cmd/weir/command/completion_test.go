package command

import (
	"strings"
	"testing"
)

// TAB after a job verb completes job ids and the names of live jobs from
// the coordinator the verb would call, filtered by what is typed; an
// unreachable coordinator completes nothing, quickly, and offers no files.
func TestCompletionOfJobIDs(t *testing.T) {
	_, url := startCoordinator(t)
	t.Setenv("JOB_NAME", "alpha")
	a := submit(t, url, writeFile(t, "a.yaml", countSpec))
	t.Setenv("JOB_NAME", "beta")
	b := submit(t, url, writeFile(t, "b.yaml", countSpec))

	for _, verb := range []string{"status", "cancel", "checkpoints", "savepoint", "savepoints", "restarts", "lag"} {
		r := mustRun(t, 0, "__complete", verb, "--coordinator", url, "")
		for _, want := range []string{a + "\talpha SCHEDULING", b + "\tbeta SCHEDULING", "alpha\tSCHEDULING " + a, "beta\tSCHEDULING " + b, ":4"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("weir %s <TAB>: no %q in\n%s", verb, want, r.stdout)
			}
		}
	}
	r := mustRun(t, 0, "__complete", "status", "--coordinator", url, "al")
	if !strings.Contains(r.stdout, "alpha\t") || strings.Contains(r.stdout, "beta") {
		t.Errorf("weir status al<TAB>: want alpha only:\n%s", r.stdout)
	}
	// One argument only: nothing after it.
	r = mustRun(t, 0, "__complete", "status", "--coordinator", url, a, "")
	if strings.Contains(r.stdout, "alpha") {
		t.Errorf("weir status ID <TAB>: completed a second job:\n%s", r.stdout)
	}
	r = mustRun(t, 0, "__complete", "status", "--coordinator", "http://"+deadAddr(t), "")
	if strings.TrimSpace(r.stdout) != ":4" {
		t.Errorf("unreachable coordinator: want no completions and no files:\n%s", r)
	}
}
