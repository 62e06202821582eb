package command

import (
	"runtime"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

// TestVersion: weir version names weir's version, the Go release and every
// registered operator, as a table and as JSON.
func TestVersion(t *testing.T) {
	if err := registry.Register(registry.Entry{
		ID: "clitest.op", Kind: registry.KindProcess, Package: "example.com/ops/x", Module: "example.com/ops", Version: "v1.2.3",
		Check: func(spec.Config) error { return nil },
		New:   func(spec.Config, *dataflow.Context) (dataflow.Operator, error) { return nil, nil },
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Unregister("clitest.op") })

	r := mustRun(t, 0, "version")
	for _, want := range []string{"weir ", "go ", runtime.Version(), "operator  clitest.op (process, example.com/ops v1.2.3)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weir version lacks %q:\n%s", want, r.stdout)
		}
	}
	var v versionInfo
	decode(t, mustRun(t, 0, "version", "-o", "json"), &v)
	if v.Weir == "" || v.Go != runtime.Version() || v.Main == "" || v.Modules == nil {
		t.Errorf("weir version -o json: %+v", v)
	}
	found := false
	for _, o := range v.Operators {
		found = found || o == operatorInfo{ID: "clitest.op", Kind: "process", Module: "example.com/ops", Version: "v1.2.3", Package: "example.com/ops/x"}
	}
	if !found {
		t.Errorf("weir version -o json lacks clitest.op: %+v", v.Operators)
	}
	mustRun(t, 2, "version", "-o", "yaml")
}

// TestBuildUsage: a malformed --with or a missing -o is a usage error
// (exit 2) that says what is wrong, before anything is built.
func TestBuildUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "-o", "x"}, "--with <module> is required"},
		{[]string{"build", "--with", "example.com/op"}, "-o <binary> is required"},
		{[]string{"build", "--with", "example.com/my op", "-o", "x"}, "is not a Go module path"},
		{[]string{"build", "--with", "example.com/op=", "-o", "x"}, "the directory after = is empty"},
		{[]string{"build", "stray", "--with", "example.com/op", "-o", "x"}, "unknown command"},
	} {
		r := mustRun(t, 2, c.args...)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("weir %s: stderr lacks %q:\n%s", strings.Join(c.args, " "), c.want, r.stderr)
		}
	}
	// A directory that holds no module: exit 1, naming it.
	dir := t.TempDir()
	r := mustRun(t, 1, "build", "--with", "example.com/op="+dir, "--with", "github.com/weir-stream/weir="+dir, "-o", dir+"/weir")
	if !strings.Contains(r.stderr, dir+" holds no go.mod") {
		t.Errorf("stderr: %s", r.stderr)
	}
}
