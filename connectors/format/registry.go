package format

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weir-stream/weir/dataflow"
)

var (
	// ErrMalformed marks a value that cannot be decoded: the record's
	// fault, for the job's on_error policy.
	ErrMalformed = errors.New("malformed value")
	// ErrUnknownSchema marks a schema id (or subject) the registry does
	// not know. A value that carries one is malformed too.
	ErrUnknownSchema = errors.New("unknown schema")
	// ErrRegistryUnavailable marks a registry that did not answer within
	// the retry budget.
	ErrRegistryUnavailable = errors.New("schema registry unavailable")
	// ErrRegistryRefused marks a registry that refused the request: bad
	// credentials, no permission, or a schema it will not register
	// (incompatible with the subject's earlier versions, or invalid). A
	// restart would be refused the same way.
	ErrRegistryRefused = fmt.Errorf("schema registry refused (%w)", dataflow.ErrUnrecoverable)
	// ErrSchema marks a schema weir cannot use (it does not parse, or has
	// a type weir does not read).
	ErrSchema = fmt.Errorf("unusable schema (%w)", dataflow.ErrUnrecoverable)
)

// Defaults of RegistryConfig.
const (
	DefaultRetryBudget    = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// negativeTTL is how long an id the registry did not know is not
	// asked for again: a burst of records with a bad id costs one
	// request, and an id registered a moment late is still found.
	negativeTTL = 5 * time.Second
)

// RegistryConfig says how to reach a schema registry.
type RegistryConfig struct {
	URL string
	// Username and Password are HTTP basic auth; BearerToken a bearer
	// token (at most one of the two).
	Username, Password string
	BearerToken        string
	// TLS configures https:// URLs (nil: the system's roots).
	TLS *tls.Config
	// RetryBudget bounds how long a request is retried while the
	// registry does not answer or answers 5xx (default 30s).
	RetryBudget time.Duration
	// RequestTimeout bounds one request (default 10s).
	RequestTimeout time.Duration
}

// Registry is a schema registry client with a per-id schema cache, safe
// for concurrent use.
type Registry struct {
	url    string
	cl     *sr.Client
	budget time.Duration

	mu   sync.Mutex
	byID map[int]*idEntry
	now  func() time.Time
}

type idEntry struct {
	done   chan struct{} // closed when the fetch finished
	schema sr.Schema
	err    error
	at     time.Time
}

// NewRegistry makes a client; it does not connect.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.URL == "" {
		return nil, errors.New("schema registry: url is empty")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("schema registry: url %q: want http:// or https://", cfg.URL)
	}
	if cfg.BearerToken != "" && (cfg.Username != "" || cfg.Password != "") {
		return nil, errors.New("schema registry: give username/password or bearer_token, not both")
	}
	if cfg.RetryBudget <= 0 {
		cfg.RetryBudget = DefaultRetryBudget
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Clone()
	}
	opts := []sr.ClientOpt{
		sr.URLs(cfg.URL),
		sr.HTTPClient(&http.Client{Transport: tr, Timeout: cfg.RequestTimeout}),
		sr.UserAgent("weir"),
	}
	if cfg.Username != "" || cfg.Password != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	if cfg.BearerToken != "" {
		opts = append(opts, sr.BearerToken(cfg.BearerToken))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", cfg.URL, err)
	}
	return &Registry{url: cfg.URL, cl: cl, budget: cfg.RetryBudget, byID: map[int]*idEntry{}, now: time.Now}, nil
}

// URL is the registry's address, for messages.
func (r *Registry) URL() string { return r.url }

// maxCachedIDs bounds the cache before remembered failures are dropped:
// a stream of values with random ids would otherwise grow it without end.
const maxCachedIDs = 4096

// evictFailures drops the remembered unknown ids; r.mu is held.
func (r *Registry) evictFailures() {
	for id, e := range r.byID {
		select {
		case <-e.done:
			if e.err != nil {
				delete(r.byID, id)
			}
		default:
		}
	}
}

// SchemaByID returns the schema with id, from the cache or the registry.
// Concurrent callers asking for one id share one request. A failure is
// not cached, except an unknown id, for a few seconds.
func (r *Registry) SchemaByID(ctx context.Context, id int) (sr.Schema, error) {
	for {
		r.mu.Lock()
		e, ok := r.byID[id]
		if ok {
			select {
			case <-e.done:
				if e.err == nil || errors.Is(e.err, ErrUnknownSchema) && r.now().Sub(e.at) < negativeTTL {
					r.mu.Unlock()
					return e.schema, e.err
				}
				ok = false // a failure: ask again
			default:
			}
		}
		if !ok {
			if len(r.byID) >= maxCachedIDs {
				r.evictFailures()
			}
			e = &idEntry{done: make(chan struct{})}
			r.byID[id] = e
			r.mu.Unlock()
			e.schema, e.err = r.fetchID(ctx, id)
			e.at = r.now()
			close(e.done)
			if e.err != nil && !errors.Is(e.err, ErrUnknownSchema) {
				r.mu.Lock()
				if r.byID[id] == e {
					delete(r.byID, id)
				}
				r.mu.Unlock()
			}
			return e.schema, e.err
		}
		r.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return sr.Schema{}, ctx.Err()
		}
	}
}

func (r *Registry) fetchID(ctx context.Context, id int) (sr.Schema, error) {
	var s sr.Schema
	err := r.retry(ctx, fmt.Sprintf("schema id %d", id), func(ctx context.Context) error {
		var err error
		s, err = r.cl.SchemaByID(ctx, id)
		return err
	})
	return s, err
}

// Register registers s under subject (an existing identical schema keeps
// its id) and returns its id.
func (r *Registry) Register(ctx context.Context, subject string, s sr.Schema) (int, error) {
	var ss sr.SubjectSchema
	err := r.retry(ctx, fmt.Sprintf("register a schema under subject %q", subject), func(ctx context.Context) error {
		var err error
		ss, err = r.cl.CreateSchema(ctx, subject, s)
		return err
	})
	return ss.ID, err
}

// Latest returns the latest version of subject.
func (r *Registry) Latest(ctx context.Context, subject string) (sr.SubjectSchema, error) {
	var ss sr.SubjectSchema
	err := r.retry(ctx, fmt.Sprintf("latest schema of subject %q", subject), func(ctx context.Context) error {
		var err error
		ss, err = r.cl.SchemaByVersion(ctx, subject, -1)
		return err
	})
	return ss, err
}

// Version returns one version of subject (for references).
func (r *Registry) Version(ctx context.Context, subject string, version int) (sr.SubjectSchema, error) {
	var ss sr.SubjectSchema
	err := r.retry(ctx, fmt.Sprintf("subject %q version %d", subject, version), func(ctx context.Context) error {
		var err error
		ss, err = r.cl.SchemaByVersion(ctx, subject, version)
		return err
	})
	return ss, err
}

// retry runs op until it succeeds, fails for good (a 4xx answer), or the
// budget runs out; what names the request in errors.
func (r *Registry) retry(ctx context.Context, what string, op func(context.Context) error) error {
	deadline := time.Now().Add(r.budget)
	var last error
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		last = err
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode < 500 {
			return r.refusal(what, re)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s at %s: %w", ErrRegistryUnavailable, what, r.url, ctx.Err())
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		wait := min(100*time.Millisecond<<min(attempt, 4), time.Second, left)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s at %s: %w", ErrRegistryUnavailable, what, r.url, ctx.Err())
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("%w: %s at %s: no answer within %s: %v", ErrRegistryUnavailable, what, r.url, r.budget, last)
}

func (r *Registry) refusal(what string, re *sr.ResponseError) error {
	switch {
	case re.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s: the registry at %s does not have it (%s)", ErrUnknownSchema, what, r.url, re.Error())
	case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %s at %s: HTTP %d %s (check schema_registry username/password or bearer_token)", ErrRegistryRefused, what, r.url, re.StatusCode, re.Error())
	case re.StatusCode == http.StatusConflict:
		return fmt.Errorf("%w: %s at %s: incompatible with the subject's earlier versions under its compatibility level: %s", ErrRegistryRefused, what, r.url, re.Error())
	default:
		return fmt.Errorf("%w: %s at %s: HTTP %d %s", ErrRegistryRefused, what, r.url, re.StatusCode, re.Error())
	}
}
