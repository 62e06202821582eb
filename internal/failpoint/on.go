//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Enabled reports whether failpoints are compiled in.
const Enabled = true

type action struct {
	kind  string // crash, error, delay
	delay time.Duration
	nth   int // fire on this hit only; 0: every hit
	hits  int
}

var (
	mu    sync.Mutex
	armed = map[string]*action{}
)

func init() {
	if err := Arm(os.Getenv(EnvVar)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", EnvVar, err)
		os.Exit(2)
	}
}

// Arm arms the failpoints of a WEIR_FAILPOINTS value.
func Arm(spec string) error {
	for _, item := range strings.Split(spec, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, act, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("%q: want name=action", item)
		}
		if err := Enable(strings.TrimSpace(name), strings.TrimSpace(act)); err != nil {
			return err
		}
	}
	return nil
}

// Enable arms one failpoint: crash, error or delay:<duration>, with an
// optional @n to fire on the n-th hit only.
func Enable(name, act string) error {
	known := false
	for _, n := range Names {
		known = known || n == name
	}
	if !known {
		return fmt.Errorf("unknown failpoint %q (known: %s)", name, strings.Join(Names, ", "))
	}
	a := &action{}
	if kind, nth, ok := strings.Cut(act, "@"); ok {
		n, err := strconv.Atoi(nth)
		if err != nil || n < 1 {
			return fmt.Errorf("failpoint %s: %q: want @n with n >= 1", name, act)
		}
		a.nth, act = n, kind
	}
	switch {
	case act == "crash", act == "error":
		a.kind = act
	case strings.HasPrefix(act, "delay:"):
		d, err := time.ParseDuration(strings.TrimPrefix(act, "delay:"))
		if err != nil || d < 0 {
			return fmt.Errorf("failpoint %s: %q: want delay:<duration>", name, act)
		}
		a.kind, a.delay = "delay", d
	default:
		return fmt.Errorf("failpoint %s: action %q: want crash, error or delay:<duration>", name, act)
	}
	mu.Lock()
	armed[name] = a
	mu.Unlock()
	return nil
}

// Disable disarms a failpoint.
func Disable(name string) {
	mu.Lock()
	delete(armed, name)
	mu.Unlock()
}

// Hits returns how often an armed failpoint was reached.
func Hits(name string) int {
	mu.Lock()
	defer mu.Unlock()
	if a := armed[name]; a != nil {
		return a.hits
	}
	return 0
}

// Inject runs the failpoint's action if it is armed.
func Inject(name string) error {
	mu.Lock()
	a := armed[name]
	if a == nil {
		mu.Unlock()
		return nil
	}
	a.hits++
	fire := a.nth == 0 || a.hits == a.nth
	kind, delay := a.kind, a.delay
	mu.Unlock()
	if !fire {
		return nil
	}
	switch kind {
	case "crash":
		fmt.Fprintf(os.Stderr, "failpoint %s: crash\n", name)
		os.Exit(CrashExitCode)
	case "delay":
		time.Sleep(delay)
	case "error":
		return fmt.Errorf("%w: %s", ErrInjected, name)
	}
	return nil
}
