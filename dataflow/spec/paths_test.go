package spec

import (
	"errors"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func mustRoots(t *testing.T, entries ...string) *Roots {
	t.Helper()
	r, err := ParseRoots(entries)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRootsCheckFile(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Symlinks inside the root: out of it, within it, and dangling out of it.
	mustSymlink(t, outside, filepath.Join(root, "escape"))
	mustSymlink(t, filepath.Join(outside, "keys"), filepath.Join(root, "dangling"))
	mustSymlink(t, filepath.Join(root, "sub"), filepath.Join(root, "inner"))
	// A symlinked root is resolved too.
	linkRoot := filepath.Join(base, "linkroot")
	mustSymlink(t, root, linkRoot)
	r := mustRoots(t, root)
	rl := mustRoots(t, "file://"+linkRoot)

	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{filepath.Join(root, "out.txt"), true},
		{filepath.Join(root, "new", "deeper", "out.txt"), true},
		{filepath.Join(root, "sub", "out.txt"), true},
		{filepath.Join(root, "inner", "out.txt"), true},
		{root, true},
		{"/root/.ssh/authorized_keys", false},
		{"/etc/passwd", false},
		{filepath.Join(root, "..", "outside", "x"), false},
		{filepath.Join(root, "sub", "..", "..", "outside", "x"), false},
		{root + "x/out", false}, // a sibling whose name starts like the root
		{filepath.Join(root, "escape", "x"), false},
		{filepath.Join(root, "escape"), false},
		{filepath.Join(root, "dangling"), false},
		{filepath.Join(root, "dangling", "x"), false},
		{"relative/out", false},
	} {
		err := r.CheckFile(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("CheckFile(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrOutsideRoots) {
			t.Errorf("CheckFile(%q): %v does not wrap ErrOutsideRoots", tc.path, err)
		}
		if err2 := rl.CheckFile(tc.path); (err2 == nil) != tc.ok {
			t.Errorf("symlinked root: CheckFile(%q) = %v, want ok=%v", tc.path, err2, tc.ok)
		}
	}
	// The refusal does not tell whether the path exists, and names the
	// roots as given.
	e1 := r.CheckFile(filepath.Join(outside, "nothing-here"))
	if err := os.WriteFile(filepath.Join(outside, "exists"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e2 := r.CheckFile(filepath.Join(outside, "exists"))
	if e1 == nil || e2 == nil || strings.Replace(e1.Error(), "nothing-here", "exists", 1) != e2.Error() {
		t.Fatalf("refusals differ by existence:\n%v\n%v", e1, e2)
	}
	if !strings.Contains(e1.Error(), root) || !strings.Contains(e1.Error(), "--allowed-paths") {
		t.Fatalf("refusal does not name the roots and the flag: %v", e1)
	}
	var nilRoots *Roots
	if err := nilRoots.CheckFile("/etc/passwd"); err != nil {
		t.Fatalf("nil roots refuse: %v", err)
	}
	if err := mustRoots(t).CheckFile(filepath.Join(root, "x")); err == nil {
		t.Fatal("an empty list of roots allowed a path")
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestRootsCheckStorage(t *testing.T) {
	root := t.TempDir()
	r := mustRoots(t, root, "hdfs://NameNode:8020/weir", "hdfs://nn2:9000/", "s3://ckpt/weir", "s3://whole/")
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"file://" + root + "/checkpoints", true},
		{"file://localhost" + root, true},
		{root + "/checkpoints", true},
		{"file:///var/lib/other", false},
		{"file://" + root + "/../x", false},
		{"/tmp", false},
		{"hdfs://namenode:8020/weir/checkpoints?user=weir", true},
		{"hdfs://namenode:8020/weir", true},
		{"hdfs://namenode:8020/weirdo", false},
		{"hdfs://namenode:8020/weir/../etc", false},
		{"hdfs://namenode:8021/weir/x", false},
		{"hdfs://evil:8020/weir/x", false},
		{"hdfs://nn2:9000/anything", true},
		{"s3://bucket/x", false},
		{"s3://ckpt/weir", true},
		{"s3://ckpt/weir/", true},
		{"s3://ckpt/weir/jobs/a", true},
		{"s3://ckpt/weirdo", false},
		{"s3://ckpt/weir/../etc", false},
		{"s3://ckpt/other", false},
		{"s3://ckpt", false},
		{"s3://CKPT/weir/x", false}, // bucket names are case-sensitive
		{"s3://other/weir/x", false},
		{"s3://whole", true},
		{"s3://whole/any/thing", true},
		{"s3://%zz/x", false},
		{"file://remotehost/x", true}, // not openable; opening says why
	} {
		err := r.CheckStorage(tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("CheckStorage(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
	// The coordinator's own storage joins the roots for storage only.
	own := filepath.Join(t.TempDir(), "own")
	rs, err := r.WithStorage("file://" + own)
	if err != nil {
		t.Fatal(err)
	}
	if rs.CheckStorage("file://"+own+"/job") != nil || r.CheckStorage("file://"+own+"/job") == nil {
		t.Fatal("WithStorage did not add the storage root, or changed the receiver")
	}
}

func TestParseRoots(t *testing.T) {
	for _, bad := range []string{"file://host/x", "hdfs:///nohost", "gs://b/x", "file://relative", "s3:///x", "s3://k:s@b/x", "s3://b/x?endpoint=e", "s3://b:9000/x"} {
		if _, err := ParseRoots([]string{bad}); err == nil {
			t.Errorf("ParseRoots(%q) accepted it", bad)
		}
	}
	r := mustRoots(t, "", " ", "./.weir", "file://./x", "hdfs://u:pw@nn:8020/weir?user=weir", "s3://bucket/weir/")
	if r.String() != "./.weir, file://./x, hdfs://nn:8020/weir, s3://bucket/weir/" {
		t.Fatalf("String() = %q", r.String())
	}
}

func TestCheckPaths(t *testing.T) {
	root := t.TempDir()
	r := mustRoots(t, root)
	j := &Job{
		Checkpoint: &Checkpoint{Storage: "file:///var/lib/elsewhere"},
		Pipeline: []Node{
			{Name: "src"},
			{Name: "ok", Sink: &Sink{File: &FileSink{Path: filepath.Join(root, "out")}}},
			{Name: "evil", Sink: &Sink{File: &FileSink{Path: "/root/.ssh/authorized_keys"}}},
		},
	}
	err := CheckPaths(j, r, r)
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 || es[0].Path != "pipeline[2].sink.file.path" || es[1].Path != "checkpoint.storage" {
		t.Fatalf("CheckPaths = %#v", err)
	}
	if err := CheckPaths(j, nil, nil); err != nil {
		t.Fatalf("nil roots: %v", err)
	}
}

// FuzzRoots: no input panics, and whatever is allowed resolves under a root.
func FuzzRoots(f *testing.F) {
	for _, s := range []string{"/etc/passwd", "out", "../x", "a/../../b", "hdfs://nn:8020/weir/x", "file:///x/../y",
		"file://./x", "hdfs://%zz", "file://[::1]/x", "\x00", "hdfs://nn:8020/weir/../../etc", "s3://b/weir/x", "s3://b/weir/../x", "s3://b/weirx"} {
		f.Add(s)
	}
	root := f.TempDir()
	r, err := ParseRoots([]string{root, "hdfs://nn:8020/weir", "s3://b/weir"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r.CheckFile(s) == nil && s != "" {
			real, err := resolve(s)
			if err != nil || !within(root, real, string(filepath.Separator)) {
				t.Fatalf("%q allowed but resolves to %q (%v)", s, real, err)
			}
		}
		if r.CheckStorage(s) == nil && strings.HasPrefix(strings.ToLower(s), "s3://") {
			u, err := url.Parse(s)
			if err != nil || u.Host != "b" || !within("/weir", path.Clean("/"+u.Path), "/") {
				t.Fatalf("%q allowed outside s3://b/weir", s)
			}
		}
		_, _ = ParseRoots([]string{s})
	})
}
