package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/checkpoint/faultstore"
	"github.com/weir-stream/weir/checkpoint/s3"
	"github.com/weir-stream/weir/checkpoint/s3/s3test"
	"github.com/weir-stream/weir/checkpoint/storagetest"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// secret is the planted secret key: it must never show in an error.
const secret = "planted-secret-4f1c9a"

func env(t *testing.T, endpoint string) {
	t.Setenv("AWS_ACCESS_KEY_ID", "weir-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv(s3.EnvEndpoint, endpoint)
}

var roots atomic.Int64

// open opens a fresh s3:// storage on srv through checkpoint.OpenStorage,
// as the coordinator and the workers do.
func open(t *testing.T, srv *s3test.Server) checkpoint.Storage {
	t.Helper()
	env(t, srv.URL())
	uri := fmt.Sprintf("s3://%s/weir/t%d", s3test.Bucket, roots.Add(1))
	st, err := checkpoint.OpenStorage(uri)
	if err != nil {
		t.Fatalf("OpenStorage(%s): %v", uri, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// openSmallParts opens a storage with the smallest part size S3 allows, so
// that files cross parts sooner.
func openSmallParts(t *testing.T, srv *s3test.Server) *s3.Storage {
	t.Helper()
	env(t, srv.URL())
	st, err := s3.New(s3.Options{Bucket: s3test.Bucket, Prefix: fmt.Sprintf("weir/t%d", roots.Add(1)),
		Endpoint: srv.URL(), PartSize: s3.MinPartSize, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func put(t *testing.T, st checkpoint.Storage, p string, data []byte) {
	t.Helper()
	w, err := st.Create(t.Context(), p)
	if err != nil {
		t.Fatalf("Create(%s): %v", p, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%s): %v", p, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close(%s): %v", p, err)
	}
}

func get(t *testing.T, st checkpoint.Storage, p string) []byte {
	t.Helper()
	r, err := st.Open(t.Context(), p)
	if err != nil {
		t.Fatalf("Open(%s): %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

func noSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Fatalf("an error shows the secret key: %v", err)
	}
}

// TestConformance runs the shared storage suite against s3:// on gofakes3
// over real HTTP: the 64 MiB file is a multipart upload of 8 parts, the
// other files single PUTs. (The fault tests below use S3's smallest part
// size.)
func TestConformance(t *testing.T) {
	srv := s3test.New(t)
	storagetest.Run(t, func(t *testing.T) checkpoint.Storage { return open(t, srv) })
	// A subtest, so that running part of the suite (-run) skips it.
	t.Run("every-operation-used", func(t *testing.T) {
		ops := []string{"PutObject", "CopyObject", "GetObject", "HeadObject", "ListObjects", "DeleteObjects"}
		if !testing.Short() {
			ops = append(ops, "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
		}
		calls := srv.Calls()
		for _, op := range ops {
			if calls[op] == 0 {
				t.Errorf("the suite never called %s (calls: %v)", op, calls)
			}
		}
	})
}

func TestOpenStorageRegistersS3(t *testing.T) {
	srv := s3test.New(t)
	st := open(t, srv)
	if _, ok := st.(*s3.Storage); !ok {
		t.Fatalf("OpenStorage(s3://...) = %T, want *s3.Storage", st)
	}
	if got, want := st.URI("j/chk-1/_metadata"), "s3://weir/weir/t"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "/j/chk-1/_metadata") {
		t.Fatalf("URI = %q, want %s.../j/chk-1/_metadata", got, want)
	}
}

// TestURIReopens: a location built by URI, opened elsewhere (as a worker
// does with the job directory the coordinator hands it), reaches the same
// objects.
func TestURIReopens(t *testing.T) {
	srv := s3test.New(t)
	st := open(t, srv)
	put(t, st, "job/chk-1/_metadata", []byte("m"))
	job, err := checkpoint.OpenStorage(st.URI("job"))
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if got := get(t, job, "chk-1/_metadata"); string(got) != "m" {
		t.Fatalf("read %q through %s", got, st.URI("job"))
	}
	if got, want := job.URI("chk-1/state"), st.URI("job/chk-1/state"); got != want {
		t.Fatalf("URI through the reopened storage %q, want %q", got, want)
	}
}

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		uri, endpoint string
		want          s3.Options
		err           string
	}{
		{uri: "s3://bucket/weir/checkpoints", want: s3.Options{Bucket: "bucket", Prefix: "weir/checkpoints"}},
		{uri: "s3://bucket/weir/", want: s3.Options{Bucket: "bucket", Prefix: "weir"}},
		{uri: "s3://bucket", want: s3.Options{Bucket: "bucket"}},
		{uri: "S3://my.bucket-1/", want: s3.Options{Bucket: "my.bucket-1"}},
		{uri: "s3://b1x/p", endpoint: "http://127.0.0.1:9000", want: s3.Options{Bucket: "b1x", Prefix: "p", Endpoint: "http://127.0.0.1:9000"}},
		{uri: "s3://b1x/p", endpoint: "https://minio.internal", want: s3.Options{Bucket: "b1x", Prefix: "p", Endpoint: "https://minio.internal"}},
		{uri: "s3:///p", err: "no bucket"},
		{uri: "s3://Bucket/p", err: "bucket"},
		{uri: "s3://ab/p", err: "bucket"},
		{uri: "s3://key:secret@bucket/p", err: "credentials do not belong in the URI"},
		{uri: "s3://bucket/p?endpoint=http://x:9000", err: "no query parameters"},
		{uri: "s3://bucket:9000/p", err: "no port"},
		{uri: "s3://bucket/a/../b", err: "no . or .."},
		{uri: "s3://bucket/a//b", err: "empty path component"},
		{uri: "s3://bucket/p", endpoint: "127.0.0.1:9000", err: "want http(s)://host[:port]"},
		{uri: "s3://bucket/p", endpoint: "http://h:1/path", err: "want http(s)://host[:port]"},
		{uri: "s3://bucket/p", endpoint: "http://!", err: "not a host name or IP address"},
		{uri: "s3://bucket/p", endpoint: "http://h:99999", err: "bad port"},
		{uri: "hdfs://bucket/p", err: "want s3"},
	} {
		t.Run(tc.uri+" "+tc.endpoint, func(t *testing.T) {
			t.Setenv(s3.EnvEndpoint, tc.endpoint)
			t.Setenv("AWS_REGION", "")
			t.Setenv("AWS_DEFAULT_REGION", "")
			u, err := url.Parse(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s3.ParseURI(u)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseURI = %+v, %v; want an error containing %q", got, err, tc.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Region, tc.want.PartSize, tc.want.MaxRetries = "us-east-1", s3.DefaultPartSize, 3
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseURI =\n%+v, want\n%+v", got, tc.want)
			}
		})
	}
	t.Run("region", func(t *testing.T) {
		t.Setenv("AWS_REGION", "")
		t.Setenv("AWS_DEFAULT_REGION", "eu-west-1")
		o, err := s3.ParseURI(&url.URL{Scheme: "s3", Host: "bucket"})
		if err != nil || o.Region != "eu-west-1" {
			t.Fatalf("AWS_DEFAULT_REGION: %+v, %v", o, err)
		}
		t.Setenv("AWS_REGION", "eu-central-1")
		o, err = s3.ParseURI(&url.URL{Scheme: "s3", Host: "bucket"})
		if err != nil || o.Region != "eu-central-1" {
			t.Fatalf("AWS_REGION wins: %+v, %v", o, err)
		}
	})
}

// FuzzParseURI: any URI string gives options that open a storage, or an
// error; never a panic.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://bucket/weir", "s3://b.c-d/a/b/c/", "s3://bucket", "s3://bucket/p?x=1",
		"s3://u:p@bucket/p", "s3://bucket:1/p", "s3://[::1]/p", "s3://bucket/a/../b", "s3:bucket"} {
		f.Add(s, "")
		f.Add(s, "http://127.0.0.1:9000")
	}
	f.Fuzz(func(t *testing.T, s, endpoint string) {
		if strings.ContainsRune(endpoint, 0) {
			return // no environment holds it
		}
		t.Setenv(s3.EnvEndpoint, endpoint)
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		o, err := s3.ParseURI(u)
		if err != nil {
			return
		}
		if o.Bucket == "" || strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/") || o.PartSize < s3.MinPartSize {
			t.Fatalf("ParseURI(%q) = %+v without an error", s, o)
		}
		st, err := s3.New(o)
		if err != nil {
			t.Fatalf("New(ParseURI(%q)): %v", s, err)
		}
		// The URI opens the same storage again.
		again, err := url.Parse(st.URI(""))
		if err != nil {
			t.Fatalf("URI %q does not parse: %v", st.URI(""), err)
		}
		o2, err := s3.ParseURI(again)
		if err != nil || o2 != o {
			t.Fatalf("URI %q of %+v reopens as %+v, %v", st.URI(""), o, o2, err)
		}
		st.Close()
	})
}

// TestEndpointDown: with nothing listening every call fails with
// ErrUnavailable naming the endpoint, and never shows the secret key.
func TestEndpointDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	env(t, dead)
	st, err := checkpoint.OpenStorage("s3://weir/down")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		noSecret(t, err)
		if !errors.Is(err, checkpoint.ErrUnavailable) || !strings.Contains(err.Error(), dead) {
			t.Fatalf("%s with the endpoint down: want ErrUnavailable naming %s, got %v", what, dead, err)
		}
	}
	_, err = st.Stat(ctx, "j/chk-1/_metadata")
	check("Stat", err)
	_, err = st.Create(ctx, "j/chk-2/a")
	check("Create", err)
	_, err = st.Open(ctx, "j/chk-1/_metadata")
	check("Open", err)
	_, err = st.List(ctx, "j")
	check("List", err)
	check("Rename", st.Rename(ctx, "j/chk-1/_metadata", "j/chk-1/x"))
	check("DeleteAll", st.DeleteAll(ctx, "j/chk-1"))
	t.Logf("endpoint down: %v", err)
}

// TestFailureMidUpload: the server fails a part in the middle of a
// multipart upload; the write fails with ErrUnavailable, the upload is
// aborted and no object appears. With the fault cleared the same file is
// written.
func TestFailureMidUpload(t *testing.T) {
	srv := s3test.New(t)
	st := openSmallParts(t, srv)
	srv.SetFaults(s3test.Faults{Fail: map[string]bool{"UploadPart": true}, FailAfter: 1})
	w, err := st.Create(t.Context(), "j/chk-1/state")
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(3*s3.MinPartSize + 100)
	_, werr := w.Write(data)
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("a write through a failing server succeeded")
	}
	for _, err := range []error{werr, cerr} {
		noSecret(t, err)
		if err != nil && !errors.Is(err, checkpoint.ErrUnavailable) {
			t.Fatalf("want ErrUnavailable, got %v", err)
		}
	}
	t.Logf("write error: %v; close error: %v", werr, cerr)
	srv.SetFaults(s3test.Faults{})
	if _, err := st.Stat(t.Context(), "j/chk-1/state"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("the partial file is visible: Stat = %v", err)
	}
	if n := srv.Calls()["AbortMultipartUpload"]; n != 1 {
		t.Fatalf("%d AbortMultipartUpload calls, want 1", n)
	}
	put(t, st, "j/chk-1/state", data)
	if got := get(t, st, "j/chk-1/state"); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
}

// TestCommitFails: the completion of a multipart upload and a single PUT
// fail; Close reports it and nothing is visible.
func TestCommitFails(t *testing.T) {
	srv := s3test.New(t)
	st := openSmallParts(t, srv)
	srv.SetFaults(s3test.Faults{Fail: map[string]bool{"CompleteMultipartUpload": true, "PutObject": true}})
	for _, n := range []int{100, 2*s3.MinPartSize + 1} {
		p := fmt.Sprintf("j/f%d", n)
		w, err := st.Create(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(pattern(n)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); !errors.Is(err, checkpoint.ErrUnavailable) || !strings.Contains(err.Error(), "InternalError") {
			t.Fatalf("Close of %d bytes: want ErrUnavailable with the server's code, got %v", n, err)
		}
		if keys := srv.Keys(t); len(keys) != 0 {
			t.Fatalf("objects after a failed commit: %v", keys)
		}
	}
}

// TestPermissionDenied: AccessDenied is ErrPermission and says so, naming
// the object.
func TestPermissionDenied(t *testing.T) {
	srv := s3test.New(t)
	st := open(t, srv)
	put(t, st, "j/a", []byte("x"))
	srv.SetFaults(s3test.Faults{Deny: map[string]bool{"PutObject": true, "DeleteObjects": true, "CopyObject": true}})
	w, err := st.Create(t.Context(), "j/b")
	if err != nil {
		t.Fatal(err)
	}
	err = w.Close()
	noSecret(t, err)
	if !errors.Is(err, checkpoint.ErrPermission) || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "s3://weir/") {
		t.Fatalf("Close on a denied bucket: want ErrPermission naming AccessDenied and the object, got %v", err)
	}
	if err := st.DeleteAll(t.Context(), "j/a"); !errors.Is(err, checkpoint.ErrPermission) {
		t.Fatalf("DeleteAll denied: want ErrPermission, got %v", err)
	}
	if err := st.Rename(t.Context(), "j/a", "j/c"); !errors.Is(err, checkpoint.ErrPermission) {
		t.Fatalf("Rename denied: want ErrPermission, got %v", err)
	}
	if got := get(t, st, "j/a"); string(got) != "x" {
		t.Fatal("reading is still allowed")
	}
}

// TestHungServer: a server that stops answering fails calls when their
// context ends instead of blocking them forever.
func TestHungServer(t *testing.T) {
	srv := s3test.New(t)
	st := open(t, srv)
	put(t, st, "f", []byte("x"))
	srv.SetFaults(s3test.Faults{Hang: map[string]bool{"HeadObject": true, "GetObject": true, "PutObject": true}})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := st.Stat(ctx, "f"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stat on a hung server: want DeadlineExceeded, got %v", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	w, err := st.Create(ctx, "g") // HEAD hangs too
	if err == nil {
		err = w.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Create on a hung server: want DeadlineExceeded, got %v", err)
	}
	srv.SetFaults(s3test.Faults{})
	if got := get(t, st, "f"); string(got) != "x" {
		t.Fatalf("after the server answers again: %q", got)
	}
}

// TestCancelledWriteLeavesNoObject: cancelling the context in the middle of
// a multipart upload aborts it.
func TestCancelledWriteLeavesNoObject(t *testing.T) {
	srv := s3test.New(t)
	st := openSmallParts(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := st.Create(ctx, "c/partial")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(2*s3.MinPartSize + 10)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close after cancel: want context.Canceled, got %v", err)
	}
	if _, err := st.Stat(t.Context(), "c/partial"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("the cancelled file is there: %v", err)
	}
	if calls := srv.Calls(); calls["UploadPart"] < 2 || calls["AbortMultipartUpload"] != 1 || calls["CompleteMultipartUpload"] != 0 {
		t.Fatalf("calls %v: want parts uploaded, then one abort and no completion", calls)
	}
}

// TestConcurrentCreateOneWins: two writers that both passed Create's check
// race for one name; If-None-Match makes exactly one Close succeed and the
// object holds its data.
func TestConcurrentCreateOneWins(t *testing.T) {
	srv := s3test.New(t)
	st := open(t, srv)
	w1, err := st.Create(t.Context(), "j/_metadata")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := st.Create(t.Context(), "j/_metadata")
	if err != nil {
		t.Fatal(err)
	}
	w1.Write([]byte("one"))
	w2.Write([]byte("two"))
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); !errors.Is(err, checkpoint.ErrExists) {
		t.Fatalf("the second writer's Close: want ErrExists, got %v", err)
	}
	if got := get(t, st, "j/_metadata"); string(got) != "one" {
		t.Fatalf("the object holds %q, want the first writer's", got)
	}
}

// TestNoSuchBucket names the bucket.
func TestNoSuchBucket(t *testing.T) {
	srv := s3test.New(t)
	env(t, srv.URL())
	st, err := checkpoint.OpenStorage("s3://missing-bucket/p")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for what, err := range map[string]error{
		"List": func() error { _, err := st.List(t.Context(), ""); return err }(),
		"Stat": func() error { _, err := st.Stat(t.Context(), "x"); return err }(),
		"Open": func() error { _, err := st.Open(t.Context(), "x"); return err }(),
	} {
		if !errors.Is(err, checkpoint.ErrNotFound) || !strings.Contains(err.Error(), `bucket "missing-bucket" does not exist`) {
			t.Fatalf("%s in a missing bucket: want ErrNotFound naming the bucket, got %v", what, err)
		}
	}
}

// TestRenameDirectoryRefused: only files are renamed.
func TestRenameDirectoryRefused(t *testing.T) {
	srv := s3test.New(t)
	st := open(t, srv)
	put(t, st, "d/a", []byte("x"))
	if err := st.Rename(t.Context(), "d", "e"); !errors.Is(err, checkpoint.ErrPermission) || !strings.Contains(err.Error(), "files only") {
		t.Fatalf("Rename of a directory: %v", err)
	}
}

// TestWriteMetadataFaults: the checkpoint commit over s3:// through the
// fault-injecting wrapper: a failed rename (the copy) or a failed upload of
// _metadata.tmp commits nothing, and a retry commits.
func TestWriteMetadataFaults(t *testing.T) {
	srv := s3test.New(t)
	inner := open(t, srv)
	fs := faultstore.New(inner)
	ctx := t.Context()
	m := &checkpointpb.Metadata{FormatVersion: 1, JobId: "job", CheckpointId: 1, JobSpec: pattern(10 << 20)}
	dir := checkpoint.CheckpointDir("job", 1)

	fs.Fail(faultstore.Rename, "_metadata", errors.New("boom"))
	if err := checkpoint.WriteMetadata(ctx, fs, dir, m); err == nil {
		t.Fatal("WriteMetadata succeeded with a failing rename")
	}
	fs.Reset()
	fs.Fail(faultstore.Write, "_metadata.tmp", checkpoint.ErrUnavailable)
	if err := checkpoint.WriteMetadata(ctx, fs, dir, m); !errors.Is(err, checkpoint.ErrUnavailable) {
		t.Fatalf("WriteMetadata with a failing write: %v", err)
	}
	fs.Reset()
	// The server fails the copy: nothing committed either.
	srv.SetFaults(s3test.Faults{Fail: map[string]bool{"CopyObject": true}})
	if err := checkpoint.WriteMetadata(ctx, fs, dir, m); !errors.Is(err, checkpoint.ErrUnavailable) {
		t.Fatalf("WriteMetadata with a failing copy: %v", err)
	}
	srv.SetFaults(s3test.Faults{})
	for _, p := range []string{"_metadata", "_metadata.tmp"} {
		if _, err := inner.Stat(ctx, dir+"/"+p); !errors.Is(err, checkpoint.ErrNotFound) {
			t.Fatalf("%s after the failed commits: Stat = %v, want ErrNotFound", p, err)
		}
	}
	if ids, err := checkpoint.ListCompleted(ctx, inner, "job"); err != nil || len(ids) != 0 {
		t.Fatalf("ListCompleted after failed commits = %v, %v; want none", ids, err)
	}
	if err := checkpoint.WriteMetadata(ctx, fs, dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := checkpoint.ReadMetadata(ctx, inner, dir)
	if err != nil || !proto.Equal(got, m) {
		t.Fatalf("ReadMetadata = %v; the metadata read back differs", err)
	}
	// Committed once: a second commit is refused and changes nothing.
	if err := checkpoint.WriteMetadata(ctx, fs, dir, &checkpointpb.Metadata{FormatVersion: 1, JobId: "other"}); !errors.Is(err, checkpoint.ErrExists) {
		t.Fatalf("second WriteMetadata: want ErrExists, got %v", err)
	}
	// A corrupted read is caught by the checksum.
	fs.Corrupt("_metadata")
	if _, err := checkpoint.ReadMetadata(ctx, fs, dir); !errors.Is(err, checkpoint.ErrCorrupt) {
		t.Fatalf("ReadMetadata of a corrupted object: want ErrCorrupt, got %v", err)
	}
}

// TestCheckpointLifecycle runs weir's checkpoint code over s3://: state
// files and metadata commits, a checkpoint whose writer died mid-upload,
// retention, and a restore that checks sizes and CRCs.
func TestCheckpointLifecycle(t *testing.T) {
	srv := s3test.New(t)
	st := open(t, srv)
	ctx := t.Context()
	state := func(n int64, sub int) []byte { return pattern(300<<10 + int(n)*1000 + sub) }
	for n := int64(1); n <= 5; n++ {
		dir := checkpoint.CheckpointDir("job", n)
		m := &checkpointpb.Metadata{FormatVersion: 1, JobId: "job", CheckpointId: n}
		for sub := range 2 {
			h, err := checkpoint.WriteState(ctx, st, dir, checkpoint.StateFileName("count", sub, "count"), state(n, sub))
			if err != nil {
				t.Fatal(err)
			}
			m.Subtasks = append(m.Subtasks, &checkpointpb.SubtaskState{VertexId: "count", Subtask: int32(sub), Parallelism: 2,
				Operators: []*checkpointpb.OperatorState{{Node: "count", Handle: h}}})
		}
		if n == 4 {
			// A writer dies mid-upload of checkpoint 4: never closed, so
			// checkpoint 4 holds only its state files and never completes.
			w, err := st.Create(ctx, dir+"/dying-0-x")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(pattern(100 << 10)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := checkpoint.WriteMetadata(ctx, st, dir, m); err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Retain(ctx, st, "job", 3); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := checkpoint.ListCompleted(ctx, st, "job")
	if err != nil || fmt.Sprint(ids) != "[2 3 5]" {
		t.Fatalf("ListCompleted = %v, %v; want [2 3 5]", ids, err)
	}
	if _, err := st.Stat(ctx, checkpoint.CheckpointDir("job", 4)); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("the aborted checkpoint 4 was not retained away: %v", err)
	}
	dir := checkpoint.CheckpointDir("job", 5)
	m, err := checkpoint.ReadMetadata(ctx, st, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.ValidateForRestore(ctx, st, dir, m); err != nil {
		t.Fatal(err)
	}
	for _, sub := range m.GetSubtasks() {
		got, err := checkpoint.ReadState(ctx, st, dir, sub.GetOperators()[0].GetHandle())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, state(5, int(sub.GetSubtask()))) {
			t.Fatalf("subtask %d restored different state", sub.GetSubtask())
		}
	}
	for _, k := range srv.Keys(t) {
		if strings.Contains(k, "_metadata.tmp") || strings.Contains(k, "dying") {
			t.Fatalf("left behind: %s (all keys: %v)", k, srv.Keys(t))
		}
	}
	if !slices.ContainsFunc(srv.Keys(t), func(k string) bool { return strings.HasSuffix(k, "/job/chk-5/_metadata") }) {
		t.Fatalf("no chk-5/_metadata among %v", srv.Keys(t))
	}
}
