package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
)

// readUnit parses a unit file with go-systemd's parser (continuation
// lines, comments, sections) into section -> key -> values.
func readUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	u := map[string]map[string][]string{}
	for _, o := range opts {
		if u[o.Section] == nil {
			u[o.Section] = map[string][]string{}
		}
		// go-systemd keeps a continuation's backslash and newline, so that
		// a unit round-trips; systemd reads them as one space.
		v := strings.TrimSpace(strings.ReplaceAll(o.Value, "\\\n", " "))
		u[o.Section][o.Name] = append(u[o.Section][o.Name], v)
	}
	return u
}

// readEnvFile reads an EnvironmentFile: KEY=VALUE lines, # comments.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			t.Fatalf("%s:%d: not KEY=VALUE: %q", path, n, line)
		}
		env[k] = v
	}
	return env
}

var (
	bracedVar   = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	unbracedVar = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)$`)
)

// expandExec expands an ExecStart line as systemd does for the forms the
// units use: ${VAR} inside a word, and $VAR as a whole word, split at
// whitespace into zero or more words. Every variable must be defined.
func expandExec(t *testing.T, where, line string, env map[string]string, used map[string]bool) []string {
	t.Helper()
	var argv []string
	for _, w := range strings.Fields(line) {
		if m := unbracedVar.FindStringSubmatch(w); m != nil {
			v, ok := env[m[1]]
			if !ok {
				t.Errorf("%s: ExecStart uses $%s, which the environment file does not set", where, m[1])
			}
			used[m[1]] = true
			argv = append(argv, strings.Fields(v)...)
			continue
		}
		argv = append(argv, bracedVar.ReplaceAllStringFunc(w, func(s string) string {
			name := bracedVar.FindStringSubmatch(s)[1]
			used[name] = true
			v, ok := env[name]
			if !ok || v == "" {
				t.Errorf("%s: ExecStart uses ${%s}, which the environment file does not set", where, name)
			}
			return v
		}))
	}
	return argv
}

// processEnv are variables weir reads from its environment (docs): an
// environment file may set them without ExecStart naming them.
var processEnv = regexp.MustCompile(`^(WEIR_HDFS_OPTIONS|WEIR_S3_ENDPOINT|WEIR_SECRETS_DIR|WEIR_SECRET_[A-Z0-9_]+|AWS_[A-Z_]+|GOGC|GOMEMLIMIT)$`)

func TestSystemdUnits(t *testing.T) {
	for verb, minStop := range map[string]time.Duration{"coordinator": 10 * time.Second, "worker": 60 * time.Second} {
		t.Run(verb, func(t *testing.T) {
			path := filepath.Join("systemd", "weir-"+verb+".service")
			u := readUnit(t, path)
			svc := u["Service"]
			one := func(key string) string {
				t.Helper()
				if len(svc[key]) != 1 {
					t.Fatalf("%s: [Service] %s given %d times, want once", path, key, len(svc[key]))
				}
				return svc[key][0]
			}
			if user := one("User"); user == "" || user == "root" || user == "0" {
				t.Errorf("%s: runs as %q; want an unprivileged user", path, user)
			}
			if r := one("Restart"); r != "on-failure" && r != "always" {
				t.Errorf("%s: Restart=%s: a coordinator that loses etcd exits 1 and must come back", path, r)
			}
			if s := one("KillSignal"); s != "SIGTERM" {
				t.Errorf("%s: KillSignal=%s; weir stops cleanly (and a worker drains) on SIGTERM", path, s)
			}
			stop, err := time.ParseDuration(one("TimeoutStopSec"))
			if err != nil || stop < minStop {
				t.Errorf("%s: TimeoutStopSec=%s (%v): want at least %s", path, one("TimeoutStopSec"), err, minStop)
			}
			if got := u["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
				t.Errorf("%s: WantedBy %q", path, got)
			}
			envFile := one("EnvironmentFile")
			if want := "/etc/weir/" + verb + ".env"; envFile != want {
				t.Errorf("%s: EnvironmentFile=%s, want %s (the template beside it)", path, envFile, want)
			}
			env := readEnvFile(t, filepath.Join("systemd", verb+".env"))
			used := map[string]bool{}
			argv := expandExec(t, path, one("ExecStart"), env, used)
			if len(argv) < 2 || argv[0] != "/usr/local/bin/weir" {
				t.Fatalf("%s: ExecStart runs %q, want /usr/local/bin/weir %s …", path, argv, verb)
			}
			got, flags := parseArgs(t, path, argv[1:])
			if got != verb {
				t.Fatalf("%s: runs weir %s, want weir %s", path, got, verb)
			}
			checkFlagsExist(t, path, verb, flags)
			if out, err := execWeir(t, append(argv[1:], "--help")...); err != nil {
				t.Errorf("%s: weir does not take ExecStart's args %q: %v\n%s", path, argv[1:], err, out)
			}
			for k := range env {
				if !used[k] && !processEnv.MatchString(k) {
					t.Errorf("%s.env sets %s, which neither ExecStart nor weir reads", verb, k)
				}
			}
			// ProtectSystem=strict leaves only ReadWritePaths writable: local
			// roots of --allowed-paths must be among them.
			rw := strings.Fields(strings.Join(svc["ReadWritePaths"], " "))
			for _, root := range strings.Split(flags["allowed-paths"], ",") {
				if strings.Contains(root, "://") && !strings.HasPrefix(root, "file://") {
					continue
				}
				dir := strings.TrimPrefix(root, "file://")
				ok := false
				for _, p := range rw {
					ok = ok || dir == p || strings.HasPrefix(dir, strings.TrimSuffix(p, "/")+"/")
				}
				if !ok {
					t.Errorf("%s: --allowed-paths root %s is read-only under ProtectSystem=strict (ReadWritePaths %v)", path, root, rw)
				}
			}
		})
	}
}
