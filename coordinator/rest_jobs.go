package coordinator

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/lifecycle"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
)

// handleJobs serves GET /api/v1/jobs, newest first.
func (c *Coordinator) handleJobs(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	list := api.JobList{Jobs: make([]api.JobSummary, 0, len(c.order))}
	for i := len(c.order) - 1; i >= 0; i-- {
		m := c.jobs[c.order[i]].m
		list.Jobs = append(list.Jobs, api.JobSummary{
			ID: m.ID, Name: m.Name, State: string(m.State), Attempt: m.Attempt, Tasks: len(m.Tasks),
			SubmittedAt: m.SubmittedAt, EndedAt: timePtr(m.EndedAt),
		})
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

// SpecTooLarge is the error text for a spec over the size limit; the REST
// API and weir submit say the same.
func SpecTooLarge(limit int64) string {
	return fmt.Sprintf("job spec is larger than %d bytes", limit)
}

// specMediaTypes are the content types a submission may have. A browser
// sends text/plain, form or multipart bodies cross-origin without a CORS
// preflight; none of those is here.
var specMediaTypes = []string{"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json"}

// checkSpecMediaType reports a submission whose Content-Type is not YAML or
// JSON.
func checkSpecMediaType(r *http.Request) *api.Error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && slices.Contains(specMediaTypes, mt) {
		return nil
	}
	got := "no Content-Type"
	if ct != "" {
		got = fmt.Sprintf("Content-Type %q", ct)
	}
	return &api.Error{Status: http.StatusUnsupportedMediaType, Code: api.CodeUnsupportedMedia,
		Message: fmt.Sprintf("a job spec is sent as YAML or JSON (Content-Type: %s), got %s", strings.Join(specMediaTypes, ", "), got)}
}

// handleSubmit serves POST /api/v1/jobs: the body is the spec YAML.
func (c *Coordinator) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if e := checkSpecMediaType(r); e != nil {
		writeError(w, e)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.cfg.MaxSpecBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeTooLarge,
				Message: SpecTooLarge(mbe.Limit)})
			return
		}
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "reading the request body: " + err.Error()})
		return
	}
	if len(body) == 0 {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidSpec,
			Message: "empty request body: send the job spec YAML as the body"})
		return
	}
	job, g, apiErr := c.compile(body)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if err := c.checkPaths(job); err != nil {
		details := specErrorDetails(err)
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidSpec,
			Message: fmt.Sprintf("job refused: %d path(s) outside the allowed paths", len(details)), Details: details})
		return
	}
	if err := c.checkJob(r.Context(), job); err != nil {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidSpec, Message: "job refused: " + err.Error(), Details: specErrorDetails(err)})
		return
	}
	if apiErr := c.checkOperators(job); apiErr != nil {
		writeError(w, apiErr)
		return
	}
	dryRun, apiErr := boolParam(r, "dry_run")
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	warnings, err := c.checkTopics(r.Context(), job, g, !dryRun)
	if err != nil {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidSpec, Message: "job refused: " + err.Error(), Details: specErrorDetails(err)})
		return
	}
	var storageURI string
	if job.Checkpoint != nil {
		storageURI = job.Checkpoint.Storage
	}
	st, err := c.jobStorage(storageURI)
	if err != nil {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: err.Error()})
		return
	}
	var initial *lifecycle.RestorePoint
	allowNonRestored, apiErr := boolParam(r, "allow_non_restored_state")
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if from := r.URL.Query().Get("from_savepoint"); from != "" {
		if err := c.checkSavepointURI(from); err != nil {
			writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest,
				Message: fmt.Sprintf("cannot restore from %s: %v", from, err)})
			return
		}
		ctx, cancel := c.storageCtx()
		initial, err = c.resolveSavepoint(ctx, from, g, allowNonRestored)
		cancel()
		if err != nil {
			writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest,
				Message: fmt.Sprintf("cannot restore from %s: %v", from, err)})
			return
		}
	} else if r.URL.Query().Has("from_savepoint") {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "from_savepoint is empty: give the URI of a savepoint or a retained checkpoint"})
		return
	}
	if dryRun {
		out := api.DryRun{Name: job.Name, Vertices: make([]api.DryRunVertex, 0, len(g.Vertices)), Warnings: warnings}
		for _, v := range g.Vertices {
			dv := api.DryRunVertex{ID: v.ID, Parallelism: v.Parallelism}
			for _, n := range v.Nodes {
				dv.Nodes = append(dv.Nodes, n.Name)
			}
			out.Vertices = append(out.Vertices, dv)
		}
		if initial != nil {
			out.RestoresFrom = initial.URI
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	id, err := c.submit(job, body, g, st, initial)
	if errors.Is(err, errJobStore) {
		writeError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable,
			Message: "the job was not submitted: " + err.Error()})
		return
	}
	if err != nil {
		c.log.Error("submit", "err", err)
		writeError(w, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()})
		return
	}
	w.Header().Set("Location", "/api/v1/jobs/"+id)
	writeJSON(w, http.StatusCreated, api.Submitted{ID: id, Warnings: warnings})
}

// compile parses and validates a spec and builds its graph. Any error is the
// user's (400), with one detail per field error.
func (c *Coordinator) compile(body []byte) (job *spec.Job, g *graph.Graph, apiErr *api.Error) {
	defer func() {
		// A parser bug must not take the coordinator down.
		if v := recover(); v != nil {
			c.log.Error("spec parser panicked", "panic", v)
			job, g, apiErr = nil, nil, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal,
				Message: "the spec parser failed on this input; see the coordinator log"}
		}
	}()
	job, err := c.cfg.ParseSpec(body)
	if err == nil && job == nil {
		err = errors.New("spec parser returned no job")
	}
	if err != nil {
		details := specErrorDetails(err)
		msg := "job spec is invalid"
		if len(details) == 0 {
			details = []api.ErrorDetail{{Message: err.Error()}}
		}
		msg = fmt.Sprintf("%s: %d error(s)", msg, len(details))
		return nil, nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidSpec, Message: msg, Details: details}
	}
	g, err = c.cfg.BuildGraph(job)
	if err == nil && (g == nil || len(g.Vertices) == 0) {
		err = errors.New("the job has no pipeline nodes")
	}
	if err == nil {
		for _, v := range g.Vertices {
			if v.Parallelism < 1 {
				err = fmt.Errorf("vertex %s has parallelism %d; it must be at least 1", v.ID, v.Parallelism)
				break
			}
		}
	}
	if err != nil {
		details := specErrorDetails(err)
		if len(details) == 0 {
			details = []api.ErrorDetail{{Message: err.Error()}}
		}
		return nil, nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidSpec,
			Message: "job graph cannot be built: " + err.Error(), Details: details}
	}
	return job, g, nil
}

// handleJob serves GET /api/v1/jobs/{id}.
func (c *Coordinator) handleJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	j := c.jobs[id]
	var out api.Job
	if j != nil {
		out = renderJob(j)
		past := pastRestarts(j.m, c.historyLocked(j))
		out.Restarts += len(past)
		// A drain is no failure (drain.go): the latest restart of another
		// reason is.
		found := false
		for _, r := range slices.Backward(j.m.Restarts) {
			if r.Reason != lifecycle.RestartDrain {
				out.LastFailure = &api.LastFailure{Cause: r.Cause, FailedAttempt: r.FailedAttempt, DetectedAt: r.DetectedAt}
				found = true
				break
			}
		}
		for _, r := range slices.Backward(past) {
			if !found && r.Reason != string(lifecycle.RestartDrain) {
				out.LastFailure = &api.LastFailure{Cause: r.Cause, FailedAttempt: r.FailedAttempt, DetectedAt: r.DetectedAt}
				break
			}
		}
		out.Warnings = c.jobWarningsLocked(j)
	}
	c.mu.Unlock()
	if j == nil {
		writeError(w, notFound(id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func renderJob(j *jobEntry) api.Job {
	m := j.m
	out := api.Job{
		ID: m.ID, Name: m.Name, State: string(m.State), Attempt: m.Attempt, Message: m.Message, FailureCause: m.Cause,
		SubmittedAt: m.SubmittedAt, StartedAt: timePtr(m.StartedAt), EndedAt: timePtr(m.EndedAt),
		Restarts: len(m.Restarts), Vertices: make([]api.Vertex, 0, len(m.Vertices)),
	}
	for _, v := range m.Vertices {
		av := api.Vertex{ID: v.ID, Parallelism: v.Parallelism, Subtasks: make([]api.Subtask, 0, v.Parallelism)}
		if gv := j.graph.Vertex(v.ID); gv != nil {
			for _, n := range gv.Nodes {
				av.Nodes = append(av.Nodes, n.Name)
			}
		}
		for i := 0; i < v.Parallelism; i++ {
			t := m.Task(lifecycle.TaskKey{Vertex: v.ID, Subtask: i})
			if t == nil {
				continue
			}
			av.Subtasks = append(av.Subtasks, api.Subtask{
				Index: i, Worker: t.Worker, State: string(t.State), Error: t.Error,
				RecordsIn: t.Metrics.RecordsIn, RecordsOut: t.Metrics.RecordsOut, BackpressuredMs: t.Metrics.BackpressuredMs,
				Links: apiLinks(t.Metrics.Links), StateBytes: apiStateBytes(t.Metrics.StateSizes),
			})
		}
		out.Vertices = append(out.Vertices, av)
	}
	return out
}

// handleCancel serves POST /api/v1/jobs/{id}/cancel.
func (c *Coordinator) handleCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st, err := c.cancel(id)
	switch {
	case errors.Is(err, errUnknownJob):
		writeError(w, notFound(id))
	case errors.Is(err, errNotCancellable):
		writeError(w, &api.Error{Status: http.StatusConflict, Code: api.CodeConflict,
			Message: fmt.Sprintf("job %s is %s and cannot be cancelled", id, st)})
	case errors.Is(err, errJobStore):
		writeError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable,
			Message: fmt.Sprintf("job %s was not cancelled: %v", id, err)})
	case err != nil:
		c.log.Error("cancel", "job", id, "err", err)
		writeError(w, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error()})
	default:
		writeJSON(w, http.StatusAccepted, api.Cancelled{ID: id, State: string(st)})
	}
}

// handleSpec serves GET /api/v1/jobs/{id}/spec: the YAML as submitted.
func (c *Coordinator) handleSpec(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	j := c.jobs[id]
	c.mu.Unlock()
	if j == nil {
		writeError(w, notFound(id))
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(j.spec) // spec is immutable once submitted
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// boolParam reads an optional true/false query parameter.
func boolParam(r *http.Request, name string) (bool, *api.Error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest,
			Message: fmt.Sprintf("%s must be true or false, got %q", name, v)}
	}
	return b, nil
}
