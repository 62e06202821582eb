// Package custombuild makes a custom weir binary from a list of Go
// modules, the way xcaddy, xk6 and the OpenTelemetry Collector builder do:
// it writes a main package that blank-imports each module (whose init
// functions register their operators with the SDK) and calls weir's
// command line, a go.mod that requires weir and the modules (with replace
// directives for local directories), and runs the go tool on it. The result
// is a complete weir: coordinator, worker, dev mode and client.
package custombuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/weir-stream/weir/internal/buildinfo"
)

// Module is one --with argument: module[@version][=directory].
type Module struct {
	Path string
	// Version is what to require: a semantic version, or anything `go get`
	// takes (latest, a branch, a commit). Empty: latest, or for a local
	// directory a version made from a hash of its Go files.
	Version string
	// Dir is a local directory that replaces the module.
	Dir string
}

func (m Module) String() string {
	s := m.Path
	if m.Version != "" {
		s += "@" + m.Version
	}
	if m.Dir != "" {
		s += "=" + m.Dir
	}
	return s
}

// A module path as the go command allows it: letters, digits and -._~/,
// not starting with a dash or a slash.
var (
	modulePathRE = regexp.MustCompile(`^[A-Za-z0-9_.~][A-Za-z0-9_.~/-]*$`)
	versionRE    = regexp.MustCompile(`^[A-Za-z0-9_.+~/-]+$`)
	semverRE     = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$`)
)

// ParseModule parses module[@version][=directory].
func ParseModule(s string) (Module, error) {
	var m Module
	left, dir, hasDir := strings.Cut(s, "=")
	if hasDir {
		if dir == "" {
			return m, fmt.Errorf("--with %q: the directory after = is empty", s)
		}
		m.Dir = dir
	}
	path, ver, hasVer := strings.Cut(left, "@")
	if path == "" {
		return m, fmt.Errorf("--with %q: want module[@version][=directory], such as example.com/myop@v1.2.0 or example.com/myop=./myop", s)
	}
	if !modulePathRE.MatchString(path) || strings.Contains(path, "//") || strings.HasSuffix(path, "/") || strings.Contains(path, "..") {
		return m, fmt.Errorf("--with %q: %q is not a Go module path (letters, digits and -._~/, such as example.com/myop)", s, path)
	}
	if hasVer {
		if ver == "" || !versionRE.MatchString(ver) || strings.HasPrefix(ver, "-") {
			return m, fmt.Errorf("--with %q: %q is not a version (want v1.2.3, latest, a branch or a commit)", s, ver)
		}
		m.Version = ver
	}
	m.Path = path
	return m, nil
}

// Options configure a build.
type Options struct {
	// With are the modules to add; one for github.com/weir-stream/weir
	// picks weir's version or directory instead of the default.
	With []Module
	// Output is the binary to write.
	Output string
	// Weir is weir's module when With names none: Self() for the running
	// binary.
	Weir Module
	// Log receives the go tool's output and progress lines.
	Log io.Writer
}

// ErrNoGo says the go tool is not on PATH.
var ErrNoGo = errors.New("weir build needs the Go toolchain, and there is no go command on PATH: install Go (https://go.dev/dl, the release weir's go.mod names or later) and put its bin directory on PATH")

// Self returns how the running binary can require weir: its module
// version, the directory a custom build took weir from, or, for a build
// from a checkout ("(devel)"), the checkout it was compiled from when it
// is still there. The error says what to pass instead.
func Self() (Module, error) {
	info := buildinfo.Read()
	if info.WeirReplace != "" && filepath.IsAbs(info.WeirReplace) {
		if isWeirDir(info.WeirReplace) {
			return Module{Path: buildinfo.WeirModule, Dir: info.WeirReplace}, nil
		}
		return Module{}, fmt.Errorf("this weir was built from the weir source in %s, which is gone: pass --with %s=<directory of a weir checkout> (or @<version>)", info.WeirReplace, buildinfo.WeirModule)
	}
	if info.Weir != "" && info.Weir != "(devel)" && info.Weir != "unknown" && !strings.HasPrefix(info.Weir, "v0.0.0-local.") {
		return Module{Path: buildinfo.WeirModule, Version: info.Weir}, nil
	}
	// A build from a checkout without -trimpath knows where its sources were.
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
			if isWeirDir(dir) {
				return Module{Path: buildinfo.WeirModule, Dir: dir}, nil
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	return Module{}, fmt.Errorf("this weir was built from a source checkout (version %s) that cannot be found: pass --with %s=<directory of the weir checkout>, or --with %s@<version>", info.Weir, buildinfo.WeirModule, buildinfo.WeirModule)
}

// isWeirDir says whether dir holds weir's go.mod.
func isWeirDir(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	return modulePath(data) == buildinfo.WeirModule
}

// modulePath reads the module line of a go.mod.
func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			rest = strings.TrimSpace(rest)
			if i := strings.Index(rest, "//"); i >= 0 {
				rest = strings.TrimSpace(rest[:i])
			}
			return strings.Trim(rest, "\"`")
		}
	}
	return ""
}

// Build makes the binary. The go tool's output streams to o.Log.
func Build(ctx context.Context, o Options) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return ErrNoGo
	}
	if o.Output == "" {
		return errors.New("weir build: -o <binary> is required")
	}
	out, err := filepath.Abs(o.Output)
	if err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	weir, mods, err := resolve(o)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "weir-build-")
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if keep {
			fmt.Fprintf(o.Log, "weir build: the generated module is kept in %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	if err := writeModule(dir, weir, mods); err != nil {
		return err
	}
	run := func(args ...string) error {
		fmt.Fprintf(o.Log, "weir build: go %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, gobin, args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = o.Log, o.Log
		// The generated module stands alone: no go.work from around the
		// temporary directory, no cgo (one static binary).
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			keep = true
			return fmt.Errorf("go %s: %w (its output is above)", args[0]+" "+args[1], err)
		}
		return nil
	}
	get := mods
	if weir.Dir == "" && !semverRE.MatchString(weir.Version) {
		get = append([]Module{weir}, mods...)
	}
	for _, m := range get {
		if m.Dir == "" {
			v := m.Version
			if v == "" {
				v = "latest"
			}
			if err := run("get", m.Path+"@"+v); err != nil {
				return err
			}
		}
	}
	if err := run("mod", "tidy"); err != nil {
		return err
	}
	withList := []string{weir.Path + "@" + weir.Version}
	for _, m := range mods {
		withList = append(withList, m.Path+"@"+cmp(m.Version, "latest"))
	}
	ldflags := "-X " + buildinfo.WithVar + "=" + strings.Join(withList, ",")
	// No -trimpath: a build with the same flags as `make build` reuses the
	// go build cache of weir's own packages and its dependencies, so a
	// custom build compiles little more than the user's modules (with
	// -trimpath a first build on a cold cache took minutes on 2 cores).
	return run("build", "-ldflags", ldflags, "-o", out, ".")
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// resolve checks the modules and settles weir's: local directories must
// hold the module they are given for, and get a version from a hash of
// their Go files when none is given, so that two builds from the same
// sources report the same version and two from different ones do not.
func resolve(o Options) (weir Module, mods []Module, err error) {
	weir = o.Weir
	seen := map[string]bool{}
	for _, m := range o.With {
		if seen[m.Path] {
			return weir, nil, fmt.Errorf("--with %s is given twice", m.Path)
		}
		seen[m.Path] = true
		if m.Dir != "" {
			abs, err := filepath.Abs(m.Dir)
			if err != nil {
				return weir, nil, err
			}
			data, err := os.ReadFile(filepath.Join(abs, "go.mod"))
			if err != nil {
				return weir, nil, fmt.Errorf("--with %s: %s holds no go.mod (a module directory has one: go mod init %s)", m, abs, m.Path)
			}
			if got := modulePath(data); got != m.Path {
				return weir, nil, fmt.Errorf("--with %s: %s/go.mod is module %q, not %s", m, abs, got, m.Path)
			}
			m.Dir = abs
			if m.Version == "" {
				h, err := hashDir(abs)
				if err != nil {
					return weir, nil, fmt.Errorf("--with %s: %w", m, err)
				}
				m.Version = "v0.0.0-local." + h
			}
		}
		if m.Path == buildinfo.WeirModule {
			weir = m
			continue
		}
		mods = append(mods, m)
	}
	if weir.Path == "" {
		return weir, nil, fmt.Errorf("weir build: which weir to build on is unknown: pass --with %s=<directory> or @<version>", buildinfo.WeirModule)
	}
	if weir.Dir != "" && weir.Version == "" {
		h, err := hashDir(weir.Dir)
		if err != nil {
			return weir, nil, err
		}
		weir.Version = "v0.0.0-local." + h
	}
	if weir.Version == "" {
		weir.Version = "latest"
	}
	if len(mods) == 0 {
		return weir, nil, errors.New("weir build: no module to add: pass --with <module>[@version][=<directory>] at least once")
	}
	return weir, mods, nil
}

// hashDir hashes the Go files (not tests), go.mod and go.sum under dir,
// skipping what the go command skips (testdata, directories starting with
// . or _, nested modules).
func hashDir(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != dir && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			if p != dir {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		n := d.Name()
		if d.Type().IsRegular() && ((strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")) || (p == filepath.Join(dir, n) && (n == "go.mod" || n == "go.sum"))) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", dir, err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// writeModule writes go.mod, go.sum and main.go into dir.
func writeModule(dir string, weir Module, mods []Module) error {
	gomod, err := goMod(weir, mods)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"go.mod":  gomod,
		"main.go": MainFile(mods),
		// Local modules' go.sum lines spare the checksum database the
		// modules they already verified.
		"go.sum": goSum(append([]Module{weir}, mods...)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// goMod is the generated module's go.mod: weir and the local modules are
// required and replaced here; modules from a proxy are added by go get.
func goMod(weir Module, mods []Module) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Generated by weir build.\nmodule weircustom\n\n")
	fmt.Fprintf(&b, "go %s\n\n", goLine())
	all := append([]Module{weir}, mods...)
	for _, m := range all {
		if m.Dir != "" || m.Path == buildinfo.WeirModule && semverRE.MatchString(m.Version) {
			fmt.Fprintf(&b, "require %s %s\n", m.Path, m.Version)
		}
	}
	for _, m := range all {
		if m.Dir != "" {
			d, err := json.Marshal(m.Dir) // a quoted path survives spaces
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "replace %s => %s\n", m.Path, d)
		}
	}
	return b.Bytes(), nil
}

// goLine is the go directive: the running toolchain's language version,
// which go mod tidy raises when a dependency needs more.
func goLine() string {
	v := strings.TrimPrefix(runtime.Version(), "go")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) >= 2 {
		return parts[0] + "." + strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
	}
	return "1.21"
}

func goSum(mods []Module) []byte {
	var lines []string
	for _, m := range mods {
		if m.Dir == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.Dir, "go.sum"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	if len(lines) == 0 {
		return nil
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// MainFile is the generated main package.
func MainFile(mods []Module) []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated by weir build. DO NOT EDIT.\n\n")
	b.WriteString("// Command weir is weir with the modules below compiled in; their init\n// functions register their operators.\npackage main\n\n")
	b.WriteString("import (\n\t\"github.com/weir-stream/weir/cmd/weir/command\"\n\n")
	for _, m := range mods {
		fmt.Fprintf(&b, "\t_ %q\n", m.Path)
	}
	b.WriteString(")\n\nfunc main() { command.Main() }\n")
	return b.Bytes()
}
