// Package s3test runs an S3-compatible server (johannesboyne/gofakes3 over
// real HTTP) for tests of s3:// checkpoint storage, with a fault-injecting
// front: denied, failing and hanging requests, counted by S3 operation.
package s3test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Bucket is the bucket New creates.
const Bucket = "weir"

// Server is an in-memory S3 server on 127.0.0.1.
type Server struct {
	srv     *httptest.Server
	backend *s3mem.Backend

	mu     sync.Mutex
	faults Faults
	calls  map[string]int
}

// Faults are applied to requests whose operation (see Op) they name.
type Faults struct {
	// Deny answers 403 AccessDenied.
	Deny map[string]bool
	// Fail answers 500 InternalError (the client retries, then gives up).
	Fail map[string]bool
	// FailAfter lets this many requests of a Fail operation pass first.
	FailAfter int
	// Hang holds the request until the client gives up (its context ends).
	Hang map[string]bool
}

// New starts a server with the bucket Bucket; it stops at the end of the
// test.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{backend: s3mem.New(), calls: map[string]int{}}
	if err := s.backend.CreateBucket(Bucket); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(s.backend, gofakes3.WithoutVersioning(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	inner := fake.Server()
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(inner, w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the endpoint, http://127.0.0.1:port.
func (s *Server) URL() string { return s.srv.URL }

// SetFaults replaces the faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Calls returns how many requests of each operation arrived.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Keys lists every object key in the bucket.
func (s *Server) Keys(t testing.TB) []string {
	t.Helper()
	list, err := s.backend.ListBucket(Bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

// Op names the S3 operation of a request: PutObject, CopyObject, GetObject,
// HeadObject, DeleteObject, DeleteObjects, ListObjects, HeadBucket,
// CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
// AbortMultipartUpload, or the method and path for anything else.
func Op(r *http.Request) string {
	q := r.URL.Query()
	onObject := strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case r.Method == http.MethodPut && q.Has("uploadId"):
		return "UploadPart"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "AbortMultipartUpload"
	case r.Method == http.MethodPost && q.Has("delete"):
		return "DeleteObjects"
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "CopyObject"
	case r.Method == http.MethodPut && onObject:
		return "PutObject"
	case r.Method == http.MethodGet && onObject:
		return "GetObject"
	case r.Method == http.MethodHead && onObject:
		return "HeadObject"
	case r.Method == http.MethodDelete && onObject:
		return "DeleteObject"
	case r.Method == http.MethodGet && q.Has("location"):
		return "GetBucketLocation"
	case r.Method == http.MethodGet:
		return "ListObjects"
	case r.Method == http.MethodHead:
		return "HeadBucket"
	}
	return r.Method + " " + r.URL.Path
}

func (s *Server) serve(inner http.Handler, w http.ResponseWriter, r *http.Request) {
	op := Op(r)
	s.mu.Lock()
	s.calls[op]++
	f := s.faults
	fail := f.Fail[op] && s.calls[op] > f.FailAfter
	s.mu.Unlock()
	switch {
	case f.Deny[op]:
		writeError(w, http.StatusForbidden, "AccessDenied", "Access Denied")
	case fail:
		writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	case f.Hang[op]:
		<-r.Context().Done()
	default:
		inner.ServeHTTP(w, r)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>test</RequestId></Error>`, code, msg)
}
