package command

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// maxProcessConfigBytes bounds a process's --config file: it holds one line
// per flag.
const maxProcessConfigBytes = 1 << 20

// configEntry is one key of a process config file.
type configEntry struct {
	key  string
	line int
	// value is a scalar's text; list holds a sequence's items (isList).
	value  string
	list   []string
	isList bool
}

// parseProcessConfig reads a process config file's contents: a YAML map
// from flag names to values (a scalar, or a list for a flag that takes
// several). Its shape is checked here; whether each key is a flag of the
// verb is applyProcessConfig's business.
func parseProcessConfig(data []byte) ([]configEntry, error) {
	if len(data) > maxProcessConfigBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxProcessConfigBytes)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty: no settings
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("holds more than one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a map of flag names to values, e.g. `grpc-addr: 0.0.0.0:6123`", root.Line)
	}
	seen := map[string]int{}
	var out []configEntry
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" || k.Value == "" {
			return nil, fmt.Errorf("line %d: a key must be a flag name", k.Line)
		}
		name := strings.TrimPrefix(k.Value, "--")
		if first, dup := seen[name]; dup {
			return nil, fmt.Errorf("line %d: key %q is given twice (first on line %d)", k.Line, name, first)
		}
		seen[name] = k.Line
		e := configEntry{key: name, line: k.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				return nil, fmt.Errorf("line %d: key %q has no value", k.Line, name)
			}
			e.value = v.Value
		case yaml.SequenceNode:
			e.isList = true
			e.list = []string{}
			for _, it := range v.Content {
				if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
					return nil, fmt.Errorf("line %d: key %q: a list item must be a single value", it.Line, name)
				}
				e.list = append(e.list, it.Value)
			}
		default:
			return nil, fmt.Errorf("line %d: key %q: want a value or a list of values, not a map", k.Line, name)
		}
		out = append(out, e)
	}
	return out, nil
}

// applyProcessConfig sets each flag the file names that the command line
// did not: the command line wins. A key that is no flag of the verb is an
// error, so a typo does not silently leave a default in place.
func applyProcessConfig(cmd *cobra.Command, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	entries, err := parseProcessConfig(data)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	fs := cmd.Flags()
	for _, e := range entries {
		f := fs.Lookup(e.key)
		if f == nil || e.key == "help" || e.key == "config" {
			return fmt.Errorf("config file %s: line %d: unknown key %q: not a flag of `%s` (see %s --help)", path, e.line, e.key, cmd.CommandPath(), cmd.CommandPath())
		}
		if f.Changed {
			continue
		}
		if err := setFlag(fs, f, e); err != nil {
			return fmt.Errorf("config file %s: line %d: %s: %w", path, e.line, e.key, err)
		}
	}
	return nil
}

func setFlag(fs *pflag.FlagSet, f *pflag.Flag, e configEntry) error {
	if !e.isList {
		return fs.Set(f.Name, e.value)
	}
	sv, ok := f.Value.(pflag.SliceValue)
	if !ok {
		return fmt.Errorf("takes one value (%s), not a list", f.Value.Type())
	}
	if err := sv.Replace(e.list); err != nil {
		return err
	}
	f.Changed = true
	return nil
}

// addConfigFlag adds --config FILE to a process verb (coordinator, worker,
// dev). Call it after the verb's other flags and PreRunE are set.
func addConfigFlag(c *cobra.Command) {
	var path string
	c.Flags().StringVar(&path, "config", "", "YAML file of flag settings, `flag-name: value` a line (a list for a repeatable flag); flags on the command line override it (docs/cli.md)")
	inner := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		if path != "" {
			if err := applyProcessConfig(cmd, path); err != nil {
				return usageError{err}
			}
		}
		if inner != nil {
			return inner(cmd, args)
		}
		return nil
	}
}
