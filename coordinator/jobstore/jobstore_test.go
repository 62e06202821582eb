package jobstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/checkpoint/faultstore"
	"github.com/weir-stream/weir/coordinator/jobstore"
)

func open(t *testing.T, dir string) checkpoint.Storage {
	t.Helper()
	st, err := checkpoint.OpenStorage("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func rec(id string, at time.Time) *jobstore.Record {
	return &jobstore.Record{ID: id, Name: "n-" + id, Spec: []byte("name: n\n"), SubmittedAt: at, Desired: jobstore.Run}
}

func TestPutListDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := jobstore.NewStorage(open(t, dir))
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	if err := s.Put(ctx, rec("bbbb", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	a := rec("aaaa", t0)
	a.SavepointURI, a.SavepointID = "file:///sp/_metadata", 7
	if err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.Desired, a.State, a.Cause, a.EndedAt = jobstore.Ended, "FAILED", "boom", t0.Add(2*time.Minute)
	if err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}

	// A second process (a restarted coordinator) sees the newest versions,
	// oldest submission first, and continues the generations.
	s2 := jobstore.NewStorage(open(t, dir))
	got, err := s2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "aaaa" || got[1].ID != "bbbb" {
		t.Fatalf("list: %+v", got)
	}
	if g := got[0]; g.Desired != jobstore.Ended || g.State != "FAILED" || g.Cause != "boom" || g.SavepointID != 7 ||
		!g.EndedAt.Equal(t0.Add(2*time.Minute)) || string(g.Spec) != "name: n\n" {
		t.Fatalf("record: %+v", g)
	}
	// Old versions are deleted; one file per job remains.
	files, _ := filepath.Glob(filepath.Join(dir, "_jobs", "aaaa", "*"))
	if len(files) != 1 || filepath.Base(files[0]) != "v2.json" {
		t.Fatalf("files %v", files)
	}
	b := got[1]
	b.Desired = jobstore.Cancel
	if err := s2.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	files, _ = filepath.Glob(filepath.Join(dir, "_jobs", "bbbb", "*"))
	if len(files) != 1 || filepath.Base(files[0]) != "v2.json" {
		t.Fatalf("files %v", files)
	}

	if err := s2.Delete(ctx, "aaaa"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Delete(ctx, "nope"); err != nil {
		t.Fatal(err)
	}
	got, err = jobstore.NewStorage(open(t, dir)).List(ctx)
	if err != nil || len(got) != 1 || got[0].Desired != jobstore.Cancel {
		t.Fatalf("after delete: %+v %v", got, err)
	}
}

func TestEmptyStoreAndLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := jobstore.NewStorage(open(t, dir))
	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	// A crash before the rename leaves only a temporary file: the job was
	// never submitted. A crash after it but before the old version was
	// deleted leaves two versions: the newest counts.
	mustWrite(t, filepath.Join(dir, "_jobs", "cccc", "v1.json.tmp"), `{"id":"cccc"}`)
	if err := s.Put(ctx, rec("dddd", time.Now())); err != nil {
		t.Fatal(err)
	}
	r := rec("dddd", time.Now())
	r.Name = "newer"
	mustWrite(t, filepath.Join(dir, "_jobs", "dddd", "v5.json"), string(must(jsonOf(r))))
	got, err := jobstore.NewStorage(open(t, dir)).List(ctx)
	if err != nil || len(got) != 1 || got[0].Name != "newer" {
		t.Fatalf("got %+v %v", got, err)
	}
	// A leftover temporary file of the next version does not block a Put.
	mustWrite(t, filepath.Join(dir, "_jobs", "dddd", "v6.json.tmp"), "garbage")
	if err := jobstore.NewStorage(open(t, dir)).Put(ctx, r); err != nil {
		t.Fatal(err)
	}
}

func TestBadRecordsAreReportedWithTheirFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := jobstore.NewStorage(open(t, dir))
	if err := s.Put(ctx, rec("good", time.Now())); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "_jobs", "junk", "v1.json"), "{not json")
	mustWrite(t, filepath.Join(dir, "_jobs", "moved", "v1.json"), string(must(jsonOf(rec("other", time.Now())))))
	got, err := s.List(ctx)
	var le *jobstore.ListError
	if !errors.As(err, &le) || len(le.Problems) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	if !strings.Contains(err.Error(), "_jobs/junk/v1.json: not a job record") || !strings.Contains(err.Error(), `holds job "other", not "moved"`) {
		t.Fatalf("error does not name the files: %v", err)
	}
	if len(got) != 1 || got[0].ID != "good" {
		t.Fatalf("the good record is still returned: %+v", got)
	}
}

func TestInvalidRecordsRefused(t *testing.T) {
	s := jobstore.NewStorage(open(t, t.TempDir()))
	for _, r := range []*jobstore.Record{
		{ID: "", Spec: []byte("x"), Desired: jobstore.Run},
		{ID: "../x", Spec: []byte("x"), Desired: jobstore.Run},
		{ID: "a", Desired: jobstore.Run},
		{ID: "a", Spec: []byte("x"), Desired: "maybe"},
		{ID: "a", Spec: []byte("x"), Desired: jobstore.Ended},
	} {
		if err := s.Put(context.Background(), r); err == nil {
			t.Errorf("accepted %+v", r)
		}
	}
}

func TestStorageFaults(t *testing.T) {
	ctx := context.Background()
	fs := faultstore.New(open(t, t.TempDir()))
	s := jobstore.NewStorage(fs)
	fs.Fail(faultstore.Write, "", checkpoint.ErrUnavailable)
	err := s.Put(ctx, rec("aaaa", time.Now()))
	if !errors.Is(err, checkpoint.ErrUnavailable) || !strings.Contains(err.Error(), "job aaaa") {
		t.Fatalf("put during an outage: %v", err)
	}
	fs.Reset()
	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("a failed put left a record: %+v %v", got, err)
	}
	if err := s.Put(ctx, rec("aaaa", time.Now())); err != nil {
		t.Fatal(err)
	}
	fs.Fail(faultstore.Open, "", checkpoint.ErrUnavailable)
	if _, err := s.List(ctx); !errors.Is(err, checkpoint.ErrUnavailable) {
		t.Fatalf("list during an outage must fail, not skip: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(must(jsonOf(rec("aaaa", time.Now()))))
	f.Add([]byte(`{"id":"x","spec":"bmFtZQ==","desired":"ended"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := jobstore.DecodeRecord("f", data)
		if err == nil {
			if verr := r.Validate(); verr != nil {
				t.Fatalf("decoded an invalid record: %v", verr)
			}
		} else if !strings.HasPrefix(err.Error(), "f: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

func mustWrite(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func jsonOf(r *jobstore.Record) ([]byte, error) { return json.Marshal(r) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
