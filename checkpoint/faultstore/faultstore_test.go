package faultstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/checkpoint/faultstore"
	"github.com/weir-stream/weir/checkpoint/storagetest"
)

func newInner(t *testing.T) checkpoint.Storage {
	t.Helper()
	st, err := checkpoint.OpenStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Without rules the wrapper is a conforming storage itself.
func TestConformancePassThrough(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) checkpoint.Storage { return faultstore.New(newInner(t)) })
}

var errBoom = errors.New("boom")

func put(ctx context.Context, st checkpoint.Storage, p, data string) error {
	w, err := st.Create(ctx, p)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(data)); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func read(ctx context.Context, st checkpoint.Storage, p string) (string, error) {
	r, err := st.Open(ctx, p)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"", "a/b", true},
		{"j/chk-*/_metadata", "j/chk-7/_metadata", true},
		{"j/chk-*/_metadata", "j/chk-7/_metadata.tmp", false},
		{"*", "j/chk-7/x", true}, // base name
		{"*.tmp", "j/chk-7/_metadata.tmp", true},
		{"j/*", "j/chk-7/x", false}, // * stops at a slash
		{"j/chk-7", "j/chk-7", true},
		{"[", "x", false}, // bad pattern matches nothing
	} {
		if got := faultstore.Match(tc.pattern, tc.path); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestFailByOpAndPattern(t *testing.T) {
	ctx := t.Context()
	fs := faultstore.New(newInner(t))
	fs.Fail(faultstore.Create, "j/chk-*/_metadata.tmp", errBoom)
	if err := put(ctx, fs, "j/chk-1/_metadata.tmp", "m"); !errors.Is(err, errBoom) {
		t.Fatalf("Create: want boom, got %v", err)
	}
	if err := put(ctx, fs, "j/chk-1/state", "s"); err != nil {
		t.Fatalf("non-matching path failed: %v", err)
	}
	fs.Fail(faultstore.Rename, "j/chk-1/_metadata", errBoom)
	if err := fs.Rename(ctx, "j/chk-1/state", "j/chk-1/_metadata"); !errors.Is(err, errBoom) {
		t.Fatalf("Rename matched by target: %v", err)
	}
	for _, op := range []faultstore.Op{faultstore.Open, faultstore.Stat, faultstore.List, faultstore.Delete} {
		fs.Fail(op, "j/chk-1*", errBoom)
	}
	if _, err := fs.Open(ctx, "j/chk-1"); !errors.Is(err, errBoom) {
		t.Fatalf("Open: %v", err)
	}
	if _, err := fs.Stat(ctx, "j/chk-1"); !errors.Is(err, errBoom) {
		t.Fatalf("Stat: %v", err)
	}
	if _, err := fs.List(ctx, "j/chk-1"); !errors.Is(err, errBoom) {
		t.Fatalf("List: %v", err)
	}
	if err := fs.DeleteAll(ctx, "j/chk-1"); !errors.Is(err, errBoom) {
		t.Fatalf("Delete: %v", err)
	}
	if fs.Calls(faultstore.Create) != 2 || fs.Calls(faultstore.Delete) != 1 {
		t.Fatalf("calls: create %d, delete %d", fs.Calls(faultstore.Create), fs.Calls(faultstore.Delete))
	}
	fs.Reset()
	if err := fs.Rename(ctx, "j/chk-1/state", "j/chk-1/_metadata"); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
	if fs.Calls(faultstore.Rename) != 1 {
		t.Fatalf("Reset did not zero the counts: %d", fs.Calls(faultstore.Rename))
	}
}

func TestFailWriteRemovesFile(t *testing.T) {
	ctx := t.Context()
	inner := newInner(t)
	fs := faultstore.New(inner)
	fs.Fail(faultstore.Write, "state", errBoom)
	if err := put(ctx, fs, "j/chk-1/state", "partial"); !errors.Is(err, errBoom) {
		t.Fatalf("Write: %v", err)
	}
	if _, err := inner.Stat(ctx, "j/chk-1/state"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("file left after a failed write: %v", err)
	}
}

func TestFailClose(t *testing.T) {
	ctx := t.Context()
	fs := faultstore.New(newInner(t))
	fs.Fail(faultstore.Close, "", errBoom)
	if err := put(ctx, fs, "f", "x"); !errors.Is(err, errBoom) {
		t.Fatalf("Close: %v", err)
	}
}

func TestFailRead(t *testing.T) {
	ctx := t.Context()
	fs := faultstore.New(newInner(t))
	if err := put(ctx, fs, "f", "x"); err != nil {
		t.Fatal(err)
	}
	fs.Fail(faultstore.Read, "f", errBoom)
	if _, err := read(ctx, fs, "f"); !errors.Is(err, errBoom) {
		t.Fatalf("Read: %v", err)
	}
}

func TestCorruptFlipsMiddleByte(t *testing.T) {
	ctx := t.Context()
	fs := faultstore.New(newInner(t))
	data := bytes.Repeat([]byte("abcdefgh"), 1000)
	if err := put(ctx, fs, "j/chk-1/s", string(data)); err != nil {
		t.Fatal(err)
	}
	fs.Corrupt("j/chk-1/*")
	got, err := read(ctx, fs, "j/chk-1/s")
	if err != nil {
		t.Fatal(err)
	}
	var diff []int
	for i := range data {
		if got[i] != data[i] {
			diff = append(diff, i)
		}
	}
	if len(diff) != 1 || diff[0] != len(data)/2 || got[len(data)/2] != data[len(data)/2]^0xff {
		t.Fatalf("differing offsets %v, want [%d]", diff, len(data)/2)
	}
	fs.Reset()
	if got, _ := read(ctx, fs, "j/chk-1/s"); got != string(data) {
		t.Fatal("still corrupt after Reset")
	}
}

func TestCorruptDetectedByReadState(t *testing.T) {
	ctx := t.Context()
	fs := faultstore.New(newInner(t))
	h, err := checkpoint.WriteState(ctx, fs, "j/chk-1", "v-0-n", []byte("some operator state"))
	if err != nil {
		t.Fatal(err)
	}
	fs.Corrupt("v-0-n")
	if _, err := checkpoint.ReadState(ctx, fs, "j/chk-1", h); !errors.Is(err, checkpoint.ErrCorrupt) {
		t.Fatalf("ReadState of a corrupted file: %v", err)
	}
}

func TestSlowHonoursContext(t *testing.T) {
	fs := faultstore.New(newInner(t))
	fs.Slow(faultstore.Stat, "", time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := fs.Stat(ctx, "x")
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Slow Stat after cancel: %v", err)
	}
	// A short delay passes through to the inner storage afterwards.
	fs.Reset()
	fs.Slow(faultstore.Stat, "", time.Millisecond)
	if _, err := fs.Stat(t.Context(), "x"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("Stat after delay: %v", err)
	}
}

func TestOpString(t *testing.T) {
	if faultstore.Rename.String() != "rename" || faultstore.Op(99).String() != "Op(99)" {
		t.Fatal(faultstore.Rename.String(), faultstore.Op(99).String())
	}
}

func TestFailTimes(t *testing.T) {
	ctx := t.Context()
	fs := faultstore.New(newInner(t))
	fs.FailTimes(faultstore.Stat, "x", 2, errBoom)
	fs.Fail(faultstore.Stat, "y", errBoom)
	for i, want := range []error{errBoom, errBoom, checkpoint.ErrNotFound, checkpoint.ErrNotFound} {
		if _, err := fs.Stat(ctx, "x"); !errors.Is(err, want) {
			t.Fatalf("call %d: want %v, got %v", i, want, err)
		}
	}
	for range 3 {
		if _, err := fs.Stat(ctx, "y"); !errors.Is(err, errBoom) {
			t.Fatalf("Fail is not limited: %v", err)
		}
	}
}
