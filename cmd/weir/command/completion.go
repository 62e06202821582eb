package command

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-stream/weir/coordinator/lifecycle"
)

// completionTimeout bounds the REST call behind one TAB press: a shell
// waiting on an unreachable coordinator would hang the prompt.
const completionTimeout = 2 * time.Second

// jobVerbs are the verbs whose one argument is a job (id or name).
var jobVerbs = map[string]bool{
	"status": true, "cancel": true, "checkpoints": true, "savepoint": true,
	"savepoints": true, "restarts": true, "lag": true,
}

// addJobCompletion makes the shell complete the JOB argument of every job
// verb from the coordinator's job list (weir completion bash|zsh|fish).
func addJobCompletion(root *cobra.Command, g *globals) {
	for _, c := range root.Commands() {
		if jobVerbs[c.Name()] {
			c.ValidArgsFunction = completeJobs(g)
		}
	}
}

// completeJobs offers the ids of every job and the names of the jobs that
// have not ended (what resolveJob accepts without ambiguity), each with
// its state as the description. The verb's --coordinator, --token and
// their variables apply, as when it runs.
func completeJobs(g *globals) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if err := g.resolveConn(cmd); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		jobs, err := g.client().Jobs(ctx)
		if err != nil {
			cobra.CompDebugln("weir: list jobs: "+err.Error(), true)
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		names := map[string]int{}
		for _, j := range jobs {
			if !lifecycle.State(j.State).Terminal() {
				names[j.Name]++
			}
		}
		for _, j := range jobs {
			if strings.HasPrefix(j.ID, toComplete) {
				out = append(out, fmt.Sprintf("%s\t%s %s", j.ID, j.Name, j.State))
			}
		}
		for _, j := range jobs {
			if names[j.Name] == 1 && !lifecycle.State(j.State).Terminal() && strings.HasPrefix(j.Name, toComplete) {
				out = append(out, fmt.Sprintf("%s\t%s %s", j.Name, j.State, j.ID))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
