package spec

import (
	"os"

	"gopkg.in/yaml.v3"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cr\"et: {x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(outside, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WEIR_SECRET_USER": "bob\nname: evil", "HOME": "/root"}
	s := Secrets{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Dir: dir}
	in := "name: j\n# ${env:HOME} in a comment stays\nuser: \"u=${env:WEIR_SECRET_USER}\"\npw: ${file:" + filepath.Join(dir, "pw") + "}\n"
	out, err := ResolveSecrets([]byte(in), s)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Name, User, Pw string }
	if err := yamlUnmarshal(out, &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Name != "j" || doc.User != "u=bob\nname: evil" || doc.Pw != "s3cr\"et: {x}" {
		t.Fatalf("%+v from\n%s", doc, out)
	}
	// A spec without references is untouched.
	if out, _ := ResolveSecrets([]byte("name: x # c\n"), s); string(out) != "name: x # c\n" {
		t.Fatalf("%q", out)
	}
	for ref, want := range map[string]string{
		"${env:HOME}":                                "must start with WEIR_SECRET_",
		"${env:WEIR_SECRET_NONE}":                    "not set on this worker",
		"${file:pw}":                                 "absolute path",
		"${file:" + outside + "}":                    "outside this worker's secrets directory",
		"${file:" + filepath.Join(dir, "link") + "}": "outside",
		"${file:" + dir + "/../x}":                   "no such file",
		"${vault:x}":                                 "",
	} {
		_, err := ResolveSecrets([]byte("name: j\nv: "+ref+"\n"), s)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", ref, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: %v, want %q", ref, err, want)
		}
	}
	if _, err := ResolveSecrets([]byte("v: ${file:/x}\n"), Secrets{Env: s.Env}); err == nil || !strings.Contains(err.Error(), SecretsDirEnv) {
		t.Errorf("no secrets dir: %v", err)
	}
}

// ExpandEnv, run by weir submit, leaves secret references to the worker.
func TestExpandEnvKeepsSecretRefs(t *testing.T) {
	in := "a: ${env:WEIR_SECRET_X}\nb: ${file:/s/pw}\nc: ${PLAIN}\n"
	out, err := ExpandEnv([]byte(in), func(k string) (string, bool) { return "v-" + k, true })
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "a: ${env:WEIR_SECRET_X}\nb: ${file:/s/pw}\nc: v-PLAIN\n" {
		t.Fatalf("%q", out)
	}
}

func FuzzResolveSecrets(f *testing.F) {
	f.Add([]byte("name: j\nv: ${env:WEIR_SECRET_A}\n"))
	f.Add([]byte("- ${file:/x}\n- {a: \"${env:WEIR_SECRET_A}${env:WEIR_SECRET_A}\"}\n"))
	f.Add([]byte("${env:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := Secrets{Env: func(string) (string, bool) { return "x\"y\n", true }}
		out, err := ResolveSecrets(data, s)
		if err == nil && HasSecretRefs(data) && secretRef.Match(out) && !strings.Contains(string(data), "${env:${") {
			// Resolved values hold no references, so none may remain
			// unless the input nests them.
			if strings.Count(string(out), "${") > strings.Count(string(data), "${") {
				t.Fatalf("references grew:\n%s\n->\n%s", data, out)
			}
		}
	})
}

func yamlUnmarshal(data []byte, v any) error { return yaml.Unmarshal(data, v) }
