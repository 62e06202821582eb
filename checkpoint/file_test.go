package checkpoint_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/checkpoint/storagetest"
)

func newFileStorage(t *testing.T) checkpoint.Storage {
	t.Helper()
	uri, err := checkpoint.FileURI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.OpenStorage(uri)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFileStorageConformance(t *testing.T) {
	storagetest.Run(t, newFileStorage)
}

func TestOpenStorageURIs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		uri  string
		want string // error substring; "" for success
	}{
		{"file://" + filepath.ToSlash(dir), ""},
		{"file://localhost" + filepath.ToSlash(dir), ""},
		{"FILE://" + filepath.ToSlash(dir), ""},
		{dir, ""},
		{"relative/dir", ""},
		{"file://host/x", "takes no host"},
		{"file://", "absolute path"},
		{"s3://bucket/x", `unknown scheme "s3"`},
		{"", "empty path"},
	} {
		st, err := checkpoint.OpenStorage(tc.uri)
		if tc.want == "" {
			if err != nil {
				t.Errorf("OpenStorage(%q): %v", tc.uri, err)
				continue
			}
			st.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenStorage(%q) = %v, want an error containing %q", tc.uri, err, tc.want)
		}
	}
}

func TestRegisterScheme(t *testing.T) {
	var got string
	checkpoint.Register("memtest", func(u *url.URL) (checkpoint.Storage, error) {
		got = u.Host + u.Path
		return nil, errors.New("opened")
	})
	_, err := checkpoint.OpenStorage("memtest://nn:8020/weir")
	if err == nil || err.Error() != "opened" || got != "nn:8020/weir" {
		t.Fatalf("registered opener not used: %v, %q", err, got)
	}
}

func TestFileStorageErrorsNameURIAndKind(t *testing.T) {
	dir := t.TempDir()
	st, err := checkpoint.OpenStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Open(t.Context(), "j/chk-1/_metadata")
	if !errors.Is(err, checkpoint.ErrNotFound) || !strings.Contains(err.Error(), "file://"+filepath.ToSlash(dir)+"/j/chk-1/_metadata") {
		t.Fatalf("Open missing: %v", err)
	}
	_, err = st.Create(t.Context(), "../escape")
	if !errors.Is(err, checkpoint.ErrPermission) || !strings.Contains(err.Error(), "escapes") {
		t.Fatalf("Create ../escape: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
		t.Fatal("a file was created outside the root")
	}
	if err := st.DeleteAll(t.Context(), ""); !errors.Is(err, checkpoint.ErrPermission) {
		t.Fatalf("DeleteAll of the root: %v", err)
	}
	// A leading slash is relative to the root, not the file system.
	w, err := st.Create(t.Context(), "/abs/f")
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := os.Stat(filepath.Join(dir, "abs", "f")); err != nil {
		t.Fatalf("leading slash: %v", err)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		_, err = st.Create(t.Context(), "ro/f")
		if !errors.Is(err, checkpoint.ErrPermission) {
			t.Fatalf("Create in a read-only dir: %v", err)
		}
	}
	st.Close()
	_, err = st.Stat(t.Context(), "abs/f")
	if !errors.Is(err, checkpoint.ErrUnavailable) {
		t.Fatalf("Stat after Close: %v", err)
	}
}

func TestFileStorageRenameDirectory(t *testing.T) {
	st := newFileStorage(t)
	ctx := t.Context()
	for _, p := range []string{"a/x", "b/y"} {
		w, err := st.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if err := st.Rename(ctx, "a", "b"); !errors.Is(err, checkpoint.ErrExists) {
		t.Fatalf("Rename dir onto dir: %v", err)
	}
	if err := st.Rename(ctx, "a", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, "c/x"); err != nil {
		t.Fatal(err)
	}
}
