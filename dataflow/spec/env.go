package spec

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ExpandEnv replaces ${VAR} and ${VAR:-default} in a job spec with values from
// lookup (os.LookupEnv at submit time). The default applies when VAR is unset
// or empty, as in a POSIX shell. "$$" stands for a literal "$"; a "$" not
// followed by "{" or "$" is kept as it is. Expansion is textual and also
// applies inside YAML comments. Every unset variable without a default is
// reported, with its line. Secret references, ${env:NAME} and
// ${file:/path}, are left as they are: workers resolve them
// (ResolveSecrets), so their values never enter the submitted spec.
func ExpandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(data))
	var errs []error
	line := 1
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '\n' {
			line++
		}
		if c != '$' || i+1 >= len(data) {
			out.WriteByte(c)
			continue
		}
		switch data[i+1] {
		case '$':
			out.WriteByte('$')
			i++
			continue
		case '{':
		default:
			out.WriteByte(c)
			continue
		}
		end := bytes.IndexByte(data[i+2:], '}')
		nl := bytes.IndexByte(data[i+2:], '\n')
		if end < 0 || (nl >= 0 && nl < end) {
			errs = append(errs, fmt.Errorf("line %d: unterminated ${ (write $$ for a literal $)", line))
			out.WriteByte(c)
			continue
		}
		body := string(data[i+2 : i+2+end])
		if strings.HasPrefix(body, "env:") || strings.HasPrefix(body, "file:") {
			// A secret reference: the worker resolves it (secrets.go).
			out.Write(data[i : i+3+end])
			i += 2 + end
			continue
		}
		i += 2 + end
		name, def, hasDef := cutDefault(body)
		if !validEnvName(name) {
			errs = append(errs, fmt.Errorf("line %d: invalid variable name in ${%s}", line, body))
			continue
		}
		val, ok := lookup(name)
		switch {
		case ok && (val != "" || !hasDef):
			out.WriteString(val)
		case hasDef:
			out.WriteString(def)
		default:
			errs = append(errs, fmt.Errorf("line %d: environment variable %s is not set and ${%s} has no default (write ${%s:-default})", line, name, name, name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out.Bytes(), nil
}

func cutDefault(body string) (name, def string, ok bool) {
	for i := 0; i+1 < len(body); i++ {
		if body[i] == ':' && body[i+1] == '-' {
			return body[:i], body[i+2:], true
		}
	}
	return body, "", false
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
