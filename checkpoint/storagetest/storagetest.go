// Package storagetest is the conformance suite every checkpoint.Storage
// implementation passes: run it from the implementation's tests with
// storagetest.Run(t, newStorage).
package storagetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/weir-stream/weir/checkpoint"
)

// Run runs the suite. newStorage returns a fresh, empty storage for each
// subtest; the suite closes it.
func Run(t *testing.T, newStorage func(t *testing.T) checkpoint.Storage) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st checkpoint.Storage)
	}{
		{"CreateReadBack", testCreateReadBack},
		{"EmptyFile", testEmptyFile},
		{"Large", testLarge},
		{"CreateExisting", testCreateExisting},
		{"OpenMissing", testOpenMissing},
		{"StatFileAndDir", testStat},
		{"Rename", testRename},
		{"RenameOntoExisting", testRenameOntoExisting},
		{"RenameMissing", testRenameMissing},
		{"ListSorted", testListSorted},
		{"ListMissing", testListMissing},
		{"DeleteAll", testDeleteAll},
		{"NestedDirs", testNestedDirs},
		{"ConcurrentCreates", testConcurrentCreates},
		{"EscapingPathRefused", testEscapingPath},
		{"ContextCancelled", testContextCancelled},
		{"URI", testURI},
		{"CloseIdempotent", testCloseIdempotent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStorage(t)
			t.Cleanup(func() { _ = st.Close() })
			tc.fn(t, st)
		})
	}
}

func put(t *testing.T, st checkpoint.Storage, p string, data []byte) {
	t.Helper()
	w, err := st.Create(t.Context(), p)
	if err != nil {
		t.Fatalf("Create(%q): %v", p, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%q): %v", p, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close(%q): %v", p, err)
	}
}

func get(t *testing.T, st checkpoint.Storage, p string) []byte {
	t.Helper()
	r, err := st.Open(t.Context(), p)
	if err != nil {
		t.Fatalf("Open(%q): %v", p, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", p, err)
	}
	return data
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: want an error wrapping %q, got %v", what, kind, err)
	}
}

func names(infos []checkpoint.FileInfo) string {
	var s []string
	for _, fi := range infos {
		n := fi.Name
		if fi.Dir {
			n += "/"
		}
		s = append(s, n)
	}
	return strings.Join(s, " ")
}

func testCreateReadBack(t *testing.T, st checkpoint.Storage) {
	data := []byte("hello, checkpoint\x00\xff")
	w, err := st.Create(t.Context(), "job/chk-1/a")
	if err != nil {
		t.Fatal(err)
	}
	// Several writes make one file.
	for _, part := range [][]byte{data[:5], data[5:10], data[10:]} {
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, st, "job/chk-1/a"); !bytes.Equal(got, data) {
		t.Fatalf("read back %q, wrote %q", got, data)
	}
}

func testEmptyFile(t *testing.T, st checkpoint.Storage) {
	put(t, st, "e", nil)
	if got := get(t, st, "e"); len(got) != 0 {
		t.Fatalf("read back %d bytes of an empty file", len(got))
	}
	fi, err := st.Stat(t.Context(), "e")
	if err != nil || fi.Size != 0 || fi.Dir {
		t.Fatalf("Stat = %+v, %v; want an empty file", fi, err)
	}
}

const (
	largeChunk = 1 << 20
	largeSize  = 64 << 20
)

// chunk i of the large file: a fixed random block stamped with i, so that
// reordered or repeated chunks are noticed without buffering the file.
func chunk(block []byte, i int) []byte {
	c := bytes.Clone(block)
	binary.BigEndian.PutUint64(c, uint64(i))
	binary.BigEndian.PutUint64(c[len(c)-8:], uint64(i))
	return c
}

func testLarge(t *testing.T, st checkpoint.Storage) {
	if testing.Short() {
		t.Skip("64 MiB round trip skipped in -short mode")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	block := make([]byte, largeChunk)
	for i := 0; i < len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], rng.Uint64())
	}
	w, err := st.Create(t.Context(), "big/state")
	if err != nil {
		t.Fatal(err)
	}
	sum := crc32.NewIEEE()
	for i := 0; i < largeSize/largeChunk; i++ {
		c := chunk(block, i)
		sum.Write(c)
		if _, err := w.Write(c); err != nil {
			t.Fatalf("write chunk %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := st.Stat(t.Context(), "big/state")
	if err != nil || fi.Size != largeSize {
		t.Fatalf("Stat = %+v, %v; want %d bytes", fi, err, largeSize)
	}
	r, err := st.Open(t.Context(), "big/state")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, largeChunk)
	rsum := crc32.NewIEEE()
	for i := 0; i < largeSize/largeChunk; i++ {
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("read chunk %d: %v", i, err)
		}
		rsum.Write(got)
		if !bytes.Equal(got, chunk(block, i)) {
			t.Fatalf("chunk %d differs", i)
		}
	}
	if n, err := r.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("after %d bytes: Read = %d, %v; want 0, EOF", largeSize, n, err)
	}
	if sum.Sum32() != rsum.Sum32() {
		t.Fatal("checksums differ")
	}
}

func testCreateExisting(t *testing.T, st checkpoint.Storage) {
	put(t, st, "d/f", []byte("first"))
	_, err := st.Create(t.Context(), "d/f")
	wantKind(t, "Create on an existing file", err, checkpoint.ErrExists)
	if got := get(t, st, "d/f"); string(got) != "first" {
		t.Fatalf("the failed Create changed the file: %q", got)
	}
}

func testOpenMissing(t *testing.T, st checkpoint.Storage) {
	_, err := st.Open(t.Context(), "nope")
	wantKind(t, "Open missing", err, checkpoint.ErrNotFound)
	_, err = st.Open(t.Context(), "no/such/dir/file")
	wantKind(t, "Open missing in missing dir", err, checkpoint.ErrNotFound)
	_, err = st.Stat(t.Context(), "nope")
	wantKind(t, "Stat missing", err, checkpoint.ErrNotFound)
}

func testStat(t *testing.T, st checkpoint.Storage) {
	put(t, st, "j/chk-1/f", []byte("12345"))
	fi, err := st.Stat(t.Context(), "j/chk-1/f")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Name != "f" || fi.Size != 5 || fi.Dir {
		t.Fatalf("Stat(file) = %+v", fi)
	}
	fi, err = st.Stat(t.Context(), "j/chk-1")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Name != "chk-1" || !fi.Dir {
		t.Fatalf("Stat(dir) = %+v", fi)
	}
}

func testRename(t *testing.T, st checkpoint.Storage) {
	put(t, st, "c/_metadata.tmp", []byte("meta"))
	if err := st.Rename(t.Context(), "c/_metadata.tmp", "c/_metadata"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, st, "c/_metadata"); string(got) != "meta" {
		t.Fatalf("renamed file holds %q", got)
	}
	_, err := st.Stat(t.Context(), "c/_metadata.tmp")
	wantKind(t, "Stat of the old name", err, checkpoint.ErrNotFound)
	// Into a directory that does not exist yet.
	if err := st.Rename(t.Context(), "c/_metadata", "d/e/moved"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, st, "d/e/moved"); string(got) != "meta" {
		t.Fatalf("moved file holds %q", got)
	}
}

func testRenameOntoExisting(t *testing.T, st checkpoint.Storage) {
	put(t, st, "c/a", []byte("new"))
	put(t, st, "c/b", []byte("old"))
	err := st.Rename(t.Context(), "c/a", "c/b")
	wantKind(t, "Rename onto an existing file", err, checkpoint.ErrExists)
	if got := get(t, st, "c/b"); string(got) != "old" {
		t.Fatalf("target changed to %q", got)
	}
	if got := get(t, st, "c/a"); string(got) != "new" {
		t.Fatalf("source changed to %q", got)
	}
}

func testRenameMissing(t *testing.T, st checkpoint.Storage) {
	err := st.Rename(t.Context(), "x/missing", "x/target")
	wantKind(t, "Rename of a missing file", err, checkpoint.ErrNotFound)
}

func testListSorted(t *testing.T, st checkpoint.Storage) {
	for _, p := range []string{"j/chk-2/f", "j/b", "j/chk-10/f", "j/a", "j/_x", "j/savepoints/sp-1/f"} {
		put(t, st, p, []byte(p))
	}
	infos, err := st.List(t.Context(), "j")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(infos), "_x a b chk-10/ chk-2/ savepoints/"; got != want {
		t.Fatalf("List = %q, want %q", got, want)
	}
	for _, fi := range infos {
		if !fi.Dir && fi.Size != int64(len("j/"+fi.Name)) {
			t.Fatalf("List: %s has size %d", fi.Name, fi.Size)
		}
	}
	empty, err := st.List(t.Context(), "j/chk-2")
	if err != nil || names(empty) != "f" {
		t.Fatalf("List(j/chk-2) = %q, %v", names(empty), err)
	}
}

func testListMissing(t *testing.T, st checkpoint.Storage) {
	_, err := st.List(t.Context(), "no/such")
	wantKind(t, "List of a missing dir", err, checkpoint.ErrNotFound)
}

func testDeleteAll(t *testing.T, st checkpoint.Storage) {
	for _, p := range []string{"j/chk-1/a", "j/chk-1/sub/b", "j/chk-1/sub/deeper/c", "j/chk-2/a"} {
		put(t, st, p, []byte("x"))
	}
	if err := st.DeleteAll(t.Context(), "j/chk-1"); err != nil {
		t.Fatal(err)
	}
	_, err := st.Stat(t.Context(), "j/chk-1")
	wantKind(t, "Stat after DeleteAll", err, checkpoint.ErrNotFound)
	if got := get(t, st, "j/chk-2/a"); string(got) != "x" {
		t.Fatal("DeleteAll removed a sibling")
	}
	// Idempotent, and fine on what never existed.
	if err := st.DeleteAll(t.Context(), "j/chk-1"); err != nil {
		t.Fatalf("second DeleteAll: %v", err)
	}
	if err := st.DeleteAll(t.Context(), "never/was"); err != nil {
		t.Fatalf("DeleteAll of a missing path: %v", err)
	}
	// A single file.
	if err := st.DeleteAll(t.Context(), "j/chk-2/a"); err != nil {
		t.Fatal(err)
	}
	_, err = st.Open(t.Context(), "j/chk-2/a")
	wantKind(t, "Open after DeleteAll of a file", err, checkpoint.ErrNotFound)
}

func testNestedDirs(t *testing.T, st checkpoint.Storage) {
	p := "a/b/c/d/e/f/g/state"
	put(t, st, p, []byte("deep"))
	for dir, want := range map[string]string{"a": "b/", "a/b/c": "d/", "a/b/c/d/e/f/g": "state"} {
		infos, err := st.List(t.Context(), dir)
		if err != nil || names(infos) != want {
			t.Fatalf("List(%q) = %q, %v; want %q", dir, names(infos), err, want)
		}
	}
	if got := get(t, st, p); string(got) != "deep" {
		t.Fatalf("read %q", got)
	}
}

func testConcurrentCreates(t *testing.T, st checkpoint.Storage) {
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("j/chk-9/sub/file-%02d", i)
			w, err := st.Create(t.Context(), p)
			if err != nil {
				errs <- err
				return
			}
			if _, err := w.Write([]byte(p)); err != nil {
				errs <- err
			}
			if err := w.Close(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	infos, err := st.List(t.Context(), "j/chk-9/sub")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != n {
		t.Fatalf("List has %d files, want %d: %s", len(infos), n, names(infos))
	}
	for i, fi := range infos {
		p := fmt.Sprintf("j/chk-9/sub/file-%02d", i)
		if got := get(t, st, p); string(got) != p {
			t.Fatalf("%s holds %q", p, got)
		}
		if fi.Name != fmt.Sprintf("file-%02d", i) {
			t.Fatalf("entry %d is %s", i, fi.Name)
		}
	}
}

func testEscapingPath(t *testing.T, st checkpoint.Storage) {
	for _, p := range []string{"../x", "a/../../x", ".."} {
		if w, err := st.Create(t.Context(), p); err == nil {
			_ = w.Close()
			t.Fatalf("Create(%q) escaped the root", p)
		}
		if _, err := st.Open(t.Context(), p); err == nil {
			t.Fatalf("Open(%q) escaped the root", p)
		}
		if err := st.DeleteAll(t.Context(), p); err == nil {
			t.Fatalf("DeleteAll(%q) accepted a path outside the root", p)
		}
	}
}

func testContextCancelled(t *testing.T, st checkpoint.Storage) {
	put(t, st, "c/f", []byte("data"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: want context.Canceled, got %v", what, err)
		}
	}
	_, err := st.Create(ctx, "c/g")
	check("Create", err)
	_, err = st.Open(ctx, "c/f")
	check("Open", err)
	_, err = st.Stat(ctx, "c/f")
	check("Stat", err)
	_, err = st.List(ctx, "c")
	check("List", err)
	check("Rename", st.Rename(ctx, "c/f", "c/h"))
	check("DeleteAll", st.DeleteAll(ctx, "c"))
	if got := get(t, st, "c/f"); string(got) != "data" {
		t.Fatal("an operation with a cancelled context changed the storage")
	}

	// Cancelled while writing: the file does not become complete.
	wctx, wcancel := context.WithCancel(t.Context())
	w, err := st.Create(wctx, "c/partial")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("before"))
	wcancel()
	_, werr := w.Write([]byte("after"))
	cerr := w.Close()
	if werr == nil && cerr == nil {
		t.Fatal("Write and Close both succeeded after the context was cancelled")
	}
}

func testURI(t *testing.T, st checkpoint.Storage) {
	root, sub := st.URI(""), st.URI("j/chk-1/_metadata")
	if !strings.Contains(root, "://") {
		t.Fatalf("URI(\"\") = %q, want an absolute URI", root)
	}
	if !strings.HasSuffix(sub, "/j/chk-1/_metadata") || !strings.HasPrefix(sub, strings.TrimRight(root, "/")) {
		t.Fatalf("URI(j/chk-1/_metadata) = %q under root %q", sub, root)
	}
}

func testCloseIdempotent(t *testing.T, st checkpoint.Storage) {
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
