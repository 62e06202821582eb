package buildinfo

import (
	"reflect"
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	stock := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: WeirModule, Version: "(devel)"},
		Deps: []*debug.Module{{Path: "github.com/spf13/cobra", Version: "v1.10.2", Sum: "h1:x"}}}
	got := From(stock, "")
	want := Info{Weir: "(devel)", Go: "go1.26.8", Main: WeirModule, Modules: []Module{{Path: "github.com/spf13/cobra", Version: "v1.10.2", Sum: "h1:x"}}}
	if !reflect.DeepEqual(got, want) || got.Custom() {
		t.Fatalf("stock: %+v", got)
	}

	// A custom build: weir and the operator module from directories (the
	// go command says "(devel)" for those, and selected v0.0.0 for weir
	// because the operator module requires it), another from the proxy.
	custom := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "weircustom", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "example.com/myop", Version: "v0.0.0-local.abc", Replace: &debug.Module{Path: "/src/myop", Version: "(devel)"}},
			{Path: "example.com/other", Version: "v1.2.0", Sum: "h1:o"},
			{Path: WeirModule, Version: "v0.0.0", Replace: &debug.Module{Path: "/src/weir", Version: "(devel)"}},
		}}
	got = From(custom, WeirModule+"@v0.0.0-local.def,example.com/myop@v0.0.0-local.abc,example.com/other@v1.2.0")
	want = Info{Weir: "v0.0.0-local.def", WeirReplace: "/src/weir", Go: "go1.26.8", Main: "weircustom",
		With: []string{"example.com/myop@v0.0.0-local.abc", "example.com/other@v1.2.0"},
		Modules: []Module{
			{Path: "example.com/myop", Version: "v0.0.0-local.abc", Replace: "/src/myop"},
			{Path: "example.com/other", Version: "v1.2.0", Sum: "h1:o"},
			{Path: WeirModule, Version: "v0.0.0-local.def", Replace: "/src/weir"},
		}}
	if !reflect.DeepEqual(got, want) || !got.Custom() {
		t.Fatalf("custom:\n got %+v\nwant %+v", got, want)
	}
}
