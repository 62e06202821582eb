package command

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/lifecycle"
)

// resolveJob turns a JOB argument into a job id. An id is used as it is;
// otherwise the argument names a job: the one job of that name that has
// not ended, or else the one job of that name at all. Several candidates
// are an error listing them, so a name never picks a job by surprise.
func resolveJob(ctx context.Context, cl *api.Client, ref string) (string, error) {
	_, err := cl.Job(ctx, ref)
	var apiErr *api.Error
	if err == nil || !errors.As(err, &apiErr) || apiErr.Code != api.CodeNotFound {
		return ref, err
	}
	jobs, lerr := cl.Jobs(ctx)
	if lerr != nil {
		return "", err
	}
	var named, live []api.JobSummary
	for _, j := range jobs {
		if j.Name != ref {
			continue
		}
		named = append(named, j)
		if !lifecycle.State(j.State).Terminal() {
			live = append(live, j)
		}
	}
	switch {
	case len(live) == 1:
		return live[0].ID, nil
	case len(live) == 0 && len(named) == 1:
		return named[0].ID, nil
	case len(named) == 0:
		return "", fmt.Errorf("job %q not found: no job has that id or name (weir jobs lists them)", ref)
	}
	candidates := named
	if len(live) > 1 {
		candidates = live
	}
	var ids []string
	for _, j := range candidates {
		ids = append(ids, fmt.Sprintf("%s (%s)", j.ID, j.State))
	}
	return "", fmt.Errorf("%d jobs are named %q: %s; give the id", len(candidates), ref, strings.Join(ids, ", "))
}
