package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Secret references in a job spec: ${env:NAME} and ${file:/path}. Unlike
// ${VAR} (ExpandEnv, expanded by `weir submit` on the client, so its value
// becomes part of the spec the coordinator stores and shows), a reference
// stays a reference in the job store, checkpoints, the REST API and the UI;
// each worker resolves it from its own environment or file system when it
// deploys a task (ResolveSecrets), and the value lives only in that
// worker's memory.

// SecretEnvPrefix starts every environment variable a ${env:NAME}
// reference may read, so a job cannot read the rest of a worker's
// environment (cloud credentials, say) into its output.
const SecretEnvPrefix = "WEIR_SECRET_"

// SecretsDirEnv names the environment variable that gives a worker its
// secrets directory: ${file:/path} must name a file under it. Unset, a
// worker refuses every ${file:} reference.
const SecretsDirEnv = "WEIR_SECRETS_DIR"

// maxSecretBytes bounds one ${file:} secret.
const maxSecretBytes = 64 << 10

var secretRef = regexp.MustCompile(`\$\{(env|file):([^}]*)\}`)

// HasSecretRefs says whether data holds a secret reference.
func HasSecretRefs(data []byte) bool {
	return bytes.Contains(data, []byte("${env:")) || bytes.Contains(data, []byte("${file:"))
}

// Secrets is where a worker looks secrets up.
type Secrets struct {
	// Env looks up an environment variable (os.LookupEnv).
	Env func(string) (string, bool)
	// Dir is the directory ${file:} references must be under ("": none
	// allowed).
	Dir string
	// Where names the process in errors ("": "worker").
	Where string
}

// OSSecrets reads the process environment and $WEIR_SECRETS_DIR.
func OSSecrets() Secrets {
	return Secrets{Env: os.LookupEnv, Dir: os.Getenv(SecretsDirEnv)}
}

// ResolveSecrets replaces every ${env:NAME} and ${file:/path} in the
// spec's scalar values with the secret, as a quoted string, so a value
// holding quotes, colons or newlines cannot change the spec's structure.
// Errors name the reference and its line, never a value. A spec without
// references is returned as it is.
func ResolveSecrets(data []byte, s Secrets) ([]byte, error) {
	if !HasSecretRefs(data) {
		return data, nil
	}
	doc, _, err := safeUnmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("secret references: invalid YAML: %w", err)
	}
	var errs []error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.ScalarNode && secretRef.MatchString(n.Value) {
			v := secretRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
				m := secretRef.FindStringSubmatch(ref)
				val, err := s.lookup(m[1], m[2])
				if err != nil {
					errs = append(errs, fmt.Errorf("line %d: %s: %w", n.Line, ref, err))
				}
				return val
			})
			n.Value, n.Tag, n.Style = v, "!!str", yaml.DoubleQuotedStyle
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("secret references: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("secret references: %w", err)
	}
	return out.Bytes(), nil
}

// ResolveValue replaces the references in one value read outside a spec
// document (a CLI flag; a block the coordinator connects with), by the
// rules of ResolveSecrets. Errors name the reference, never a value.
func (s Secrets) ResolveValue(v string) (string, error) {
	var errs []error
	out := secretRef.ReplaceAllStringFunc(v, func(ref string) string {
		m := secretRef.FindStringSubmatch(ref)
		val, err := s.lookup(m[1], m[2])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
		}
		return val
	})
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return out, nil
}

func (s Secrets) lookup(kind, name string) (string, error) {
	where := s.Where
	if where == "" {
		where = "worker"
	}
	switch kind {
	case "env":
		if !validEnvName(name) || !strings.HasPrefix(name, SecretEnvPrefix) {
			return "", fmt.Errorf("a secret environment variable's name must start with %s (and hold only letters, digits and _)", SecretEnvPrefix)
		}
		env := s.Env
		if env == nil {
			env = os.LookupEnv
		}
		v, ok := env(name)
		if !ok {
			return "", errors.New("not set on this " + where)
		}
		return v, nil
	case "file":
		if s.Dir == "" {
			return "", fmt.Errorf("this %s has no secrets directory: set %s to the directory of secret files", where, SecretsDirEnv)
		}
		if !filepath.IsAbs(name) {
			return "", errors.New("want an absolute path")
		}
		dir, err := filepath.EvalSymlinks(s.Dir)
		if err != nil {
			return "", fmt.Errorf("secrets directory: %w", err)
		}
		p, err := filepath.EvalSymlinks(filepath.Clean(name))
		if err != nil {
			return "", errors.New("no such file on this " + where)
		}
		if rel, err := filepath.Rel(dir, p); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || rel == "." {
			return "", fmt.Errorf("outside this %s's secrets directory (%s)", where, SecretsDirEnv)
		}
		f, err := os.Open(p)
		if err != nil {
			return "", errors.New("cannot be read on this " + where)
		}
		defer f.Close()
		buf := make([]byte, maxSecretBytes+1)
		n, _ := readFull(f, buf)
		if n > maxSecretBytes {
			return "", fmt.Errorf("larger than %d bytes", maxSecretBytes)
		}
		// A file written by `echo` ends with a newline that is not part
		// of the secret.
		return strings.TrimSuffix(strings.TrimSuffix(string(buf[:n]), "\n"), "\r"), nil
	}
	return "", fmt.Errorf("unknown secret kind %q", kind)
}

func readFull(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
