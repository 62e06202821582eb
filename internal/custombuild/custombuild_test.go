package custombuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseModule(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Module
		err  string
	}{
		{in: "example.com/myop", want: Module{Path: "example.com/myop"}},
		{in: "example.com/myop@v1.2.0", want: Module{Path: "example.com/myop", Version: "v1.2.0"}},
		{in: "example.com/myop=./op", want: Module{Path: "example.com/myop", Dir: "./op"}},
		{in: "example.com/myop@v1.2.0=/src/op", want: Module{Path: "example.com/myop", Version: "v1.2.0", Dir: "/src/op"}},
		{in: "example.com/myop@latest", want: Module{Path: "example.com/myop", Version: "latest"}},
		{in: "example.com/myop=dir=with=eq", want: Module{Path: "example.com/myop", Dir: "dir=with=eq"}},
		{in: "", err: "want module[@version][=directory]"},
		{in: "=./op", err: "want module[@version][=directory]"},
		{in: "example.com/myop=", err: "the directory after = is empty"},
		{in: "example.com/myop@", err: `"" is not a version`},
		{in: "example.com/myop@-x", err: `"-x" is not a version`},
		{in: "example.com/my op", err: "is not a Go module path"},
		{in: "-example.com/myop", err: "is not a Go module path"},
		{in: "example.com//myop", err: "is not a Go module path"},
		{in: "example.com/../myop", err: "is not a Go module path"},
		{in: "example.com/myop@v1 2", err: "is not a version"},
	} {
		got, err := ParseModule(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseModule(%q) = %+v, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseModule(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if again, err := ParseModule(got.String()); err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", c.in, again, err)
		}
	}
}

// FuzzParseModule: any --with argument parses or fails with an error that
// quotes it, never panics, and what parses prints back to itself.
func FuzzParseModule(f *testing.F) {
	for _, s := range []string{"example.com/myop", "example.com/myop@v1.2.0=./op", "a@b=c", "=", "@", "x@@y", "é.com/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseModule(s)
		if err != nil {
			if !strings.Contains(err.Error(), "--with") {
				t.Fatalf("error %q does not say which flag", err)
			}
			return
		}
		if m.Path == "" {
			t.Fatalf("%q parsed with an empty path", s)
		}
		if again, err := ParseModule(m.String()); err != nil || again != m {
			t.Fatalf("%q: %+v prints as %q, which parses as %+v, %v", s, m, m.String(), again, err)
		}
	})
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHashDir: the version of a local module follows its Go sources and
// nothing else.
func TestHashDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"go.mod": "module example.com/op\n", "op.go": "package op\n"})
	h1, err := hashDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"op_test.go": "package op\n", "README.md": "x", "testdata/x.go": "package x",
		".git/HEAD": "x", "sub/go.mod": "module example.com/op/sub\n", "sub/s.go": "package sub\n"})
	if h2, _ := hashDir(dir); h2 != h1 {
		t.Fatalf("tests, docs, testdata, .git and a nested module changed the hash: %s -> %s", h1, h2)
	}
	writeFiles(t, dir, map[string]string{"inner/x.go": "package inner\n"})
	h3, _ := hashDir(dir)
	writeFiles(t, dir, map[string]string{"op.go": "package op // changed\n"})
	h4, _ := hashDir(dir)
	if h3 == h1 || h4 == h3 || len(h1) != 12 {
		t.Fatalf("hashes %s %s %s", h1, h3, h4)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"op/go.mod": "module example.com/op // the op\n", "op/op.go": "package op\n",
		"weir/go.mod": "module github.com/weir-stream/weir\n\ngo 1.26\n", "weir/go.sum": "a v1 h1:x\n", "op/go.sum": "a v1 h1:x\nb v1 h1:y\n"})
	weir := Module{Path: "github.com/weir-stream/weir", Dir: filepath.Join(dir, "weir")}
	for _, c := range []struct {
		with []Module
		err  string
	}{
		{with: nil, err: "no module to add"},
		{with: []Module{{Path: "example.com/op", Dir: filepath.Join(dir, "nope")}}, err: "holds no go.mod"},
		{with: []Module{{Path: "example.com/other", Dir: filepath.Join(dir, "op")}}, err: `go.mod is module "example.com/op", not example.com/other`},
		{with: []Module{{Path: "example.com/op"}, {Path: "example.com/op", Version: "v1.0.0"}}, err: "given twice"},
	} {
		if _, _, err := resolve(Options{With: c.with, Weir: weir}); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: %v, want %q", c.with, err, c.err)
		}
	}
	w, mods, err := resolve(Options{With: []Module{{Path: "example.com/op", Dir: filepath.Join(dir, "op")}, {Path: "example.com/x", Version: "v1.0.0"}}, Weir: weir})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Version, "v0.0.0-local.") || len(mods) != 2 || !strings.HasPrefix(mods[0].Version, "v0.0.0-local.") {
		t.Fatalf("weir %+v, modules %+v", w, mods)
	}
	gomod, err := goMod(w, mods)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"module weircustom\n", "require github.com/weir-stream/weir " + w.Version + "\n",
		"require example.com/op " + mods[0].Version + "\n", "replace example.com/op => \"" + filepath.Join(dir, "op") + "\"\n"} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, gomod)
		}
	}
	if strings.Contains(string(gomod), "example.com/x") {
		t.Errorf("go.mod requires a proxy module itself (go get does):\n%s", gomod)
	}
	if got := string(goSum(append([]Module{w}, mods...))); got != "a v1 h1:x\nb v1 h1:y\n" {
		t.Errorf("go.sum %q", got)
	}
	main := string(MainFile(mods))
	for _, want := range []string{"package main", "\t_ \"example.com/op\"\n", "\t_ \"example.com/x\"\n", "func main() { command.Main() }"} {
		if !strings.Contains(main, want) {
			t.Errorf("main.go lacks %q:\n%s", want, main)
		}
	}
	// A weir given by version is required at it; "latest" goes through go get.
	gomod, _ = goMod(Module{Path: "github.com/weir-stream/weir", Version: "v1.4.0"}, mods[1:])
	if !strings.Contains(string(gomod), "require github.com/weir-stream/weir v1.4.0\n") {
		t.Errorf("go.mod:\n%s", gomod)
	}
}

// TestBuildWithoutGo: no go on PATH is a clear error, not exec's.
func TestBuildWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Build(t.Context(), Options{With: []Module{{Path: "example.com/op"}}, Output: filepath.Join(t.TempDir(), "weir")})
	if err != ErrNoGo {
		t.Fatalf("err = %v", err)
	}
}

// TestSelfFromCheckout: a weir built from a checkout without -trimpath (a
// test binary is one) builds on that checkout by default.
func TestSelfFromCheckout(t *testing.T) {
	m, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	if m.Path != "github.com/weir-stream/weir" || m.Dir != root || m.Version != "" {
		t.Fatalf("Self() = %+v, want the checkout %s", m, root)
	}
}
