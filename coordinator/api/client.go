package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the coordinator's REST API.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as `Authorization: Bearer` on every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithTLS makes the client trust and present what cfg says (its RootCAs,
// and Certificates for a coordinator that asks for client certificates).
func WithTLS(cfg *tls.Config) Option {
	return func(c *Client) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg
		c.http.Transport = tr
	}
}

// NewClient returns a client for the coordinator at baseURL
// (e.g. "http://127.0.0.1:8081" or "https://weir.example:8081").
func NewClient(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	c.http.CheckRedirect = c.redirect
	return c
}

// redirect follows a standby coordinator's redirect to the leader with the
// token: net/http drops Authorization on a redirect to another host, and
// the leader wants it as much as the standby did. It is never sent from
// https down to plain http.
func (c *Client) redirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	if c.token != "" && (via[0].URL.Scheme != "https" || req.URL.Scheme == "https") {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return nil
}

// Overview returns cluster totals.
func (c *Client) Overview(ctx context.Context) (*Overview, error) {
	var v Overview
	return &v, c.do(ctx, http.MethodGet, "/api/v1/overview", nil, &v)
}

// Workers lists registered workers.
func (c *Client) Workers(ctx context.Context) ([]Worker, error) {
	var v WorkerList
	return v.Workers, c.do(ctx, http.MethodGet, "/api/v1/workers", nil, &v)
}

// Jobs lists jobs, newest first.
func (c *Client) Jobs(ctx context.Context) ([]JobSummary, error) {
	var v JobList
	return v.Jobs, c.do(ctx, http.MethodGet, "/api/v1/jobs", nil, &v)
}

// Submit submits a job spec (YAML) and returns the new job's id. An invalid
// spec yields an *Error with one detail per problem.
func (c *Client) Submit(ctx context.Context, specYAML []byte) (string, error) {
	var v Submitted
	if err := c.do(ctx, http.MethodPost, "/api/v1/jobs", specYAML, &v); err != nil {
		return "", err
	}
	return v.ID, nil
}

// DryRun checks a spec as Submit does, against the cluster (its operators,
// allowed paths and, with a RestoreOption from FromSavepoint, the
// savepoint), without submitting it.
func (c *Client) DryRun(ctx context.Context, specYAML []byte, opts ...RestoreOption) (*DryRun, error) {
	q := url.Values{"dry_run": {"true"}}
	for _, o := range opts {
		o(q)
	}
	var v DryRun
	if err := c.do(ctx, http.MethodPost, "/api/v1/jobs?"+q.Encode(), specYAML, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// SubmitJob submits a job and returns the whole answer, its warnings
// too; FromSavepoint and AllowNonRestoredState restore it.
func (c *Client) SubmitJob(ctx context.Context, specYAML []byte, opts ...RestoreOption) (*Submitted, error) {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	path := "/api/v1/jobs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var v Submitted
	if err := c.do(ctx, http.MethodPost, path, specYAML, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// FromSavepoint makes a DryRun or SubmitJob restore from uri.
func FromSavepoint(uri string) RestoreOption {
	return func(q url.Values) { q.Set("from_savepoint", uri) }
}

// RestoreOption changes how SubmitFromSavepoint restores a job.
type RestoreOption func(url.Values)

// AllowNonRestoredState lets a restore drop the state of nodes the new job
// does not have (renamed or removed), which is refused otherwise.
func AllowNonRestoredState() RestoreOption {
	return func(q url.Values) { q.Set("allow_non_restored_state", "true") }
}

// SubmitFromSavepoint submits a job that restores from a savepoint or a
// retained checkpoint (its directory or _metadata URI).
func (c *Client) SubmitFromSavepoint(ctx context.Context, specYAML []byte, uri string, opts ...RestoreOption) (string, error) {
	q := url.Values{"from_savepoint": {uri}}
	for _, o := range opts {
		o(q)
	}
	var v Submitted
	if err := c.do(ctx, http.MethodPost, "/api/v1/jobs?"+q.Encode(), specYAML, &v); err != nil {
		return "", err
	}
	return v.ID, nil
}

// Checkpoints returns a job's checkpoint summary and history.
func (c *Client) Checkpoints(ctx context.Context, id string) (*Checkpoints, error) {
	var v Checkpoints
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/checkpoints", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Checkpoint returns one checkpoint with its per-subtask figures.
func (c *Client) Checkpoint(ctx context.Context, id string, cid int64) (*CheckpointDetail, error) {
	var v CheckpointDetail
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%s/checkpoints/%d", url.PathEscape(id), cid), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Restarts returns a job's restart history.
func (c *Client) Restarts(ctx context.Context, id string) (*Restarts, error) {
	var v Restarts
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/restarts", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// TriggerSavepoint requests a savepoint; poll Savepoint with the returned
// request id until it is COMPLETED or FAILED.
func (c *Client) TriggerSavepoint(ctx context.Context, id string, stop bool) (*Savepoint, error) {
	body, _ := json.Marshal(SavepointOptions{Stop: stop})
	var v Savepoint
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/savepoints", body, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Savepoint returns one savepoint request.
func (c *Client) Savepoint(ctx context.Context, id, requestID string) (*Savepoint, error) {
	var v Savepoint
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/savepoints/"+url.PathEscape(requestID), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Job returns one job's details.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var v Job
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Cancel asks the coordinator to cancel a job.
func (c *Client) Cancel(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil)
}

// DrainWorker starts draining a worker (POST /api/v1/workers/{id}/drain):
// nothing more is placed there, its jobs move to other workers from a stop
// checkpoint, and the worker exits once it holds no subtask.
func (c *Client) DrainWorker(ctx context.Context, id string) (*Worker, error) {
	var w Worker
	if err := c.do(ctx, http.MethodPost, "/api/v1/workers/"+url.PathEscape(id)+"/drain", nil, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// Spec returns the spec a job was submitted with.
func (c *Client) Spec(ctx context.Context, id string) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/spec", nil, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// do sends a request with a YAML body (or none); out is a JSON target or a
// *bytes.Buffer for the raw body. Non-2xx answers become *Error.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	return c.send(ctx, method, path, "application/yaml", body, out)
}

// doJSON is do with a JSON body.
func (c *Client) doJSON(ctx context.Context, method, path string, body []byte, out any) error {
	return c.send(ctx, method, path, "application/json", body, out)
}

func (c *Client) send(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// A *url.Error repeats the method and the whole URL; say once
		// which coordinator did not answer and keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach the coordinator at %s (%s %s): %w", c.base, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("api: %s %s: reading response: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
			eb.Error.Status = resp.StatusCode
			return eb.Error
		}
		return &Error{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode),
			Message: fmt.Sprintf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))}
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *bytes.Buffer:
		o.Write(data)
		return nil
	default:
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("api: %s %s: decoding response: %w", method, path, err)
		}
		return nil
	}
}

// Graph returns a job's graph with counters per vertex.
func (c *Client) Graph(ctx context.Context, id string) (*JobGraph, error) {
	var v JobGraph
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/graph", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Subtasks returns the subtasks of a job's current attempt.
func (c *Client) Subtasks(ctx context.Context, id string) (*SubtaskList, error) {
	var v SubtaskList
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/subtasks", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// KafkaLag returns the lag of every Kafka source partition of a job.
func (c *Client) KafkaLag(ctx context.Context, id string) (*KafkaLag, error) {
	var v KafkaLag
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/kafka", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Savepoints lists a job's savepoint requests, oldest first.
func (c *Client) Savepoints(ctx context.Context, id string) ([]Savepoint, error) {
	var v SavepointList
	if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/savepoints", nil, &v); err != nil {
		return nil, err
	}
	return v.Savepoints, nil
}
