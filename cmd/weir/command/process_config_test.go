package command

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestParseProcessConfig(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		want          []configEntry
	}{
		{name: "empty", in: ""},
		{name: "comment only", in: "# nothing yet\n"},
		{name: "scalars and a list", in: "grpc-addr: 0.0.0.0:6123\nslots: 8\ninsecure: true\nallowed-paths: [/data, /tmp]\n",
			want: []configEntry{{key: "grpc-addr", line: 1, value: "0.0.0.0:6123"}, {key: "slots", line: 2, value: "8"},
				{key: "insecure", line: 3, value: "true"}, {key: "allowed-paths", line: 4, list: []string{"/data", "/tmp"}, isList: true}}},
		{name: "dashes tolerated", in: "--slots: 2\n", want: []configEntry{{key: "slots", line: 1, value: "2"}}},
		{name: "not a map", in: "- slots\n", err: "line 1: want a map of flag names to values"},
		{name: "a scalar", in: "slots\n", err: "want a map"},
		{name: "twice", in: "slots: 1\nid: a\nslots: 2\n", err: `line 3: key "slots" is given twice (first on line 1)`},
		{name: "no value", in: "slots:\n", err: `line 1: key "slots" has no value`},
		{name: "nested map", in: "tls:\n  cert: a\n", err: `line 1: key "tls": want a value or a list of values, not a map`},
		{name: "list of maps", in: "allowed-paths:\n  - a: b\n", err: `line 2: key "allowed-paths": a list item must be a single value`},
		{name: "two documents", in: "slots: 1\n---\nslots: 2\n", err: "more than one YAML document"},
		{name: "bad yaml", in: "slots: [1\n", err: "yaml"},
		{name: "too big", in: strings.Repeat("#", maxProcessConfigBytes+1), err: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcessConfig([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.key != w.key || g.line != w.line || g.value != w.value || g.isList != w.isList || strings.Join(g.list, ",") != strings.Join(w.list, ",") {
					t.Errorf("entry %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// verb finds a process verb by path in a fresh CLI tree.
func verb(t *testing.T, path ...string) *cobra.Command {
	t.Helper()
	c, _, err := newRoot(&globals{}).Find(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestProcessConfigFile: each process verb takes --config, whose keys are
// its flag names; the command line wins over the file, the file over the
// defaults; a list sets a repeatable flag.
func TestProcessConfigFile(t *testing.T) {
	for _, tc := range []struct {
		verb                    []string
		file                    string
		args                    []string
		want                    map[string]string
		fromFile, fromFlagsOnly string
	}{
		{verb: []string{"coordinator"},
			file: "http-addr: 0.0.0.0:9000\ngrpc-addr: 0.0.0.0:7000\nlog-level: debug\nallowed-paths: [/srv/a, /srv/b]\nheartbeat-timeout: 9s\ninsecure: true\n",
			args: []string{"--http-addr", "127.0.0.1:1"},
			want: map[string]string{"http-addr": "127.0.0.1:1", "grpc-addr": "0.0.0.0:7000", "log-level": "debug",
				"allowed-paths": "[/srv/a,/srv/b]", "heartbeat-timeout": "9s", "insecure": "true", "job-retention": "24h0m0s"}},
		{verb: []string{"worker"},
			file: "coordinator: 10.0.0.1:6123\nslots: 8\nid: w-7\nmemory-limit: 2GiB\n",
			args: []string{"--slots=2"},
			want: map[string]string{"coordinator": "10.0.0.1:6123", "slots": "2", "id": "w-7", "memory-limit": "2GiB", "gc-percent": "400"}},
		{verb: []string{"dev"},
			file: "workers: 3\ndata-dir: /tmp/weir-x\nexample: true\n",
			args: []string{"--workers", "1"},
			want: map[string]string{"workers": "1", "data-dir": "/tmp/weir-x", "example": "true", "slots": "4"}},
	} {
		t.Run(strings.Join(tc.verb, " "), func(t *testing.T) {
			c := verb(t, tc.verb...)
			if err := c.ParseFlags(append(tc.args, "--config", writeFile(t, "c.yaml", tc.file))); err != nil {
				t.Fatal(err)
			}
			if err := c.PreRunE(c, nil); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				if got := c.Flags().Lookup(k).Value.String(); got != want {
					t.Errorf("--%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestProcessConfigErrors: a bad file stops the process before it starts,
// with exit 2 and a message naming the file, the line and the key.
func TestProcessConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		verb, file string
		want       []string
	}{
		{"coordinator", "http-addr: 127.0.0.1:0\ngrpc-adr: 127.0.0.1:0\n", []string{`line 2: unknown key "grpc-adr": not a flag of ` + "`weir coordinator`"}},
		{"worker", "slots: many\n", []string{"line 1: slots:", `invalid syntax`}},
		{"worker", "token: x\n", []string{`unknown key "token"`}},
		{"dev", "config: other.yaml\n", []string{`unknown key "config"`}},
		{"dev", "workers: [1, 2]\n", []string{"line 1: workers: takes one value (int), not a list"}},
		{"coordinator", "- a\n", []string{"want a map"}},
	} {
		p := writeFile(t, "weir.yaml", tc.file)
		r := mustRun(t, ExitUsage, tc.verb, "--config", p)
		for _, w := range append(tc.want, "config file "+p) {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("weir %s with %q: stderr %q lacks %q", tc.verb, tc.file, r.stderr, w)
			}
		}
	}
	r := mustRun(t, ExitUsage, "worker", "--config", "/nonexistent/weir.yaml")
	if !strings.Contains(r.stderr, "--config: open /nonexistent/weir.yaml") {
		t.Errorf("missing file: %q", r.stderr)
	}
}

func FuzzParseProcessConfig(f *testing.F) {
	for _, s := range []string{"", "slots: 4\n", "allowed-paths: [a, b]\n", "a:\n  b: c\n", "- x\n", "x: 1\nx: 2\n", "a: &x 1\nb: *x\n", "? [a]\n: b\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseProcessConfig(data)
		if err != nil {
			return
		}
		for _, e := range es {
			if e.key == "" || e.line < 1 {
				t.Fatalf("entry %+v from %q", e, data)
			}
		}
	})
}
