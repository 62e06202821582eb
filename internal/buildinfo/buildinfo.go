// Package buildinfo says what a weir binary is made of: the weir version,
// the Go release, the modules compiled in (the binary's runtime/debug build
// info) and, for a binary made by `weir build`, the modules it was asked to
// add. `weir version` prints it and a worker reports it when it registers.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// WeirModule is weir's own module path.
const WeirModule = "github.com/weir-stream/weir"

// with is set by `weir build` through -ldflags -X: the modules it added,
// "path@version" separated by commas (module paths and versions hold none).
var with string

// WithVar is the linker name of the variable `weir build` sets.
const WithVar = WeirModule + "/internal/buildinfo.with"

// Module is one module compiled into the binary.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	// Replace is what replaced it: a directory, or module@version.
	Replace string `json:"replace,omitempty"`
	Sum     string `json:"sum,omitempty"`
}

// Info describes a binary.
type Info struct {
	// Weir is weir's version: "(devel)" for a build from a checkout, the
	// module version a custom build required otherwise.
	Weir string `json:"weir"`
	// WeirReplace is the directory (or module@version) a custom build
	// took weir from, if any.
	WeirReplace string `json:"weir_replace,omitempty"`
	Go          string `json:"go"`
	// Main is the main module: github.com/weir-stream/weir for a stock
	// binary, the generated module of a custom build.
	Main string `json:"main"`
	// With lists the modules `weir build --with` added, path@version.
	With []string `json:"with,omitempty"`
	// Modules are every module compiled in besides the main one.
	Modules []Module `json:"modules"`
}

// Custom says whether the binary was made by `weir build`.
func (i Info) Custom() bool { return i.Main != WeirModule }

// Read describes the running binary.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Weir: "unknown", Go: "unknown", Modules: []Module{}}
	}
	return From(bi, with)
}

// Version is the running binary's weir version.
func Version() string { return Read().Weir }

// From describes a binary from its build info and the list `weir build`
// recorded.
func From(bi *debug.BuildInfo, withList string) Info {
	info := Info{Go: bi.GoVersion, Main: bi.Main.Path, Weir: "unknown", Modules: []Module{}}
	if bi.Main.Path == WeirModule {
		info.Weir = bi.Main.Version
	}
	// weir build records the version it gave each module it replaced with
	// a directory; the go command may have selected another (a higher one
	// some module requires), which says nothing about the sources.
	built := map[string]string{}
	if withList != "" {
		for _, w := range strings.Split(withList, ",") {
			path, ver, _ := strings.Cut(w, "@")
			built[path] = ver
			if path != WeirModule {
				info.With = append(info.With, w)
			}
		}
	}
	for _, d := range bi.Deps {
		m := Module{Path: d.Path, Version: d.Version, Sum: d.Sum}
		if r := d.Replace; r != nil {
			m.Replace = r.Path
			// A directory replacement reads as version (devel).
			if r.Version != "" && r.Version != "(devel)" {
				m.Replace += "@" + r.Version
			} else if v := built[d.Path]; v != "" {
				m.Version = v
			}
			m.Sum = r.Sum
		}
		if d.Path == WeirModule {
			info.Weir, info.WeirReplace = m.Version, m.Replace
		}
		info.Modules = append(info.Modules, m)
	}
	return info
}
