package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// binaryEnv is the variable the multi-process suites take a prebuilt
// bin/weir from (internal/proc.BinaryEnv).
const binaryEnv = "WEIR_E2E_BIN"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// weirBinary is the weir binary the deployment files run: $WEIR_E2E_BIN, or
// one built from this checkout (the build cache makes it cheap after
// `make build`).
func weirBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(binaryEnv); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			t.Fatalf("%s=%s: %v", binaryEnv, p, err)
		}
		return abs
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "weir-deploy-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "weir")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/weir")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/weir: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

var (
	flagsMu    sync.Mutex
	flagsCache = map[string]map[string]bool{}
	helpFlag   = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)`)
)

// weirFlags is the set of long flags `weir VERB` takes (its own and the
// global ones), read from `weir VERB --help`: the deployment files must
// name only flags the binary has.
func weirFlags(t *testing.T, verb string) map[string]bool {
	t.Helper()
	flagsMu.Lock()
	defer flagsMu.Unlock()
	if f, ok := flagsCache[verb]; ok {
		return f
	}
	out, err := exec.Command(weirBinary(t), verb, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("weir %s --help: %v\n%s", verb, err, out)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			flags[m[1]] = true
		}
	}
	if len(flags) < 3 {
		t.Fatalf("weir %s --help lists %d flags; is its format still cobra's?\n%s", verb, len(flags), out)
	}
	flagsCache[verb] = flags
	return flags
}

// parseArgs splits a weir command line (VERB --flag=value --flag …) into
// its verb and flags, failing on anything else: the chart and the units
// always write --flag=value so a value cannot be mistaken for a flag.
func parseArgs(t *testing.T, where string, args []string) (string, map[string]string) {
	t.Helper()
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		t.Fatalf("%s: args %q do not start with a weir verb", where, args)
	}
	flags := map[string]string{}
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("%s: argument %q of %q is not a --flag", where, a, args)
		}
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if _, dup := flags[name]; dup {
			t.Fatalf("%s: --%s given twice in %q", where, name, args)
		}
		flags[name] = value
	}
	return args[0], flags
}

// checkFlagsExist fails for every flag that `weir VERB` does not take.
func checkFlagsExist(t *testing.T, where, verb string, flags map[string]string) {
	t.Helper()
	known := weirFlags(t, verb)
	for name := range flags {
		if !known[name] {
			t.Errorf("%s: weir %s has no flag --%s", where, verb, name)
		}
	}
}

// execWeir runs the weir binary with args and returns its combined output.
func execWeir(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	return exec.Command(weirBinary(t), args...).CombinedOutput()
}
