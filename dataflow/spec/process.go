package spec

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// KindProcess is the kind of a node that runs a registered user operator.
const KindProcess = "process"

// Process runs a user operator registered by name (docs/sdk.md) on a keyed
// stream: the node reads exactly one key_by.
type Process struct {
	// Operator is the registered id, namespaced with dots
	// ("acme.fraud_alert").
	Operator string `yaml:"operator,omitempty"`
	// Config is the operator's configuration, any YAML mapping; the
	// operator decodes and validates it when the job is submitted.
	Config Config `yaml:"config,omitempty"`
}

// Config is an operator's configuration as JSON-like values: nil, bool,
// int64, float64, string, []any and map[string]any.
type Config map[string]any

// OperatorIDRE is the form of a registered operator id: two or more
// dot-separated parts of lower-case letters, digits and '_', the first
// naming who wrote it ("acme.dedup").
var OperatorIDRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

var configType = reflect.TypeFor[Config]()

// decodeConfig decodes any YAML mapping into JSON-like values.
func (d *decoder) decodeConfig(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(path, "want a mapping, got %s", kindName(n))
		return
	}
	m, _ := d.anyValue(n, path).(map[string]any)
	v.Set(reflect.ValueOf(Config(m)))
}

func (d *decoder) anyValue(n *yaml.Node, path string) any {
	n = d.resolve(n)
	if n == nil || d.aborted {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		keys, vals := d.mappingPairs(n, path)
		m := make(map[string]any, len(keys))
		for i, k := range keys {
			m[k] = d.anyValue(vals[i], join(path, k))
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = d.anyValue(c, fmt.Sprintf("%s[%d]", path, i))
		}
		return l
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b
			}
		case "!!int":
			if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
				return i
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f
			}
		}
		return n.Value
	}
	d.errorf(path, "unsupported YAML value")
	return nil
}

func (v *validator) process(i int, n *Node) {
	p := nodePath(i) + ".process"
	switch op := n.Process.Operator; {
	case op == "":
		v.errorf(p+".operator", "required: the id of a registered operator, such as acme.dedup")
	case !OperatorIDRE.MatchString(op):
		v.errorf(p+".operator", "%q is not an operator id: want dot-separated lower-case names such as acme.dedup", op)
	}
	// The input must be exactly one key_by: user state is keyed.
	if len(n.Inputs) != 1 {
		if len(n.Inputs) > 1 {
			v.errorf(nodePath(i)+".inputs", "process reads exactly one key_by node, got %d inputs (union them before key_by)", len(n.Inputs))
		}
		return
	}
	name, tag := ParseInput(n.Inputs[0])
	if tag != "" {
		v.errorf(nodePath(i)+".inputs", "process reads a key_by node, not a side output")
		return
	}
	if u, ok := v.index[name]; ok && v.j.Pipeline[u].KeyBy == nil {
		v.errorf(nodePath(i)+".inputs", "process reads a key_by node (its state and timers are per key); %q is a %s", name, v.j.Pipeline[u].Kind())
	}
}

// UserComponent is a node's reference to a registered component: a
// process operator or a source or sink connector.
type UserComponent struct {
	// Index is the node's index in the pipeline.
	Index int
	// Kind is the node's kind: "process", "source" or "sink".
	Kind string
	// Path is the spec path of the reference ("pipeline[2].process");
	// its id and config are under it.
	Path string
	// IDField is the name of the id's field under Path ("operator" or
	// "connector").
	IDField string
	ID      string
	Config  Config
}

// IDPath is the spec path of the id ("pipeline[2].process.operator").
func (u UserComponent) IDPath() string { return u.Path + "." + u.IDField }

// UserComponents returns the job's references to registered components
// (process operators, source and sink connectors), in pipeline order.
func (j *Job) UserComponents() []UserComponent {
	var out []UserComponent
	for i := range j.Pipeline {
		n := &j.Pipeline[i]
		switch {
		case n.Process != nil:
			out = append(out, UserComponent{Index: i, Kind: KindProcess, Path: nodePath(i) + ".process", IDField: "operator", ID: n.Process.Operator, Config: n.Process.Config})
		case n.Source != nil && n.Source.Connector != "":
			out = append(out, UserComponent{Index: i, Kind: KindSource, Path: nodePath(i) + ".source", IDField: "connector", ID: n.Source.Connector, Config: n.Source.Config})
		case n.Sink != nil && n.Sink.Connector != "":
			out = append(out, UserComponent{Index: i, Kind: KindSink, Path: nodePath(i) + ".sink", IDField: "connector", ID: n.Sink.Connector, Config: n.Sink.Config})
		}
	}
	return out
}

// ProcessNodes returns the pipeline indexes of the job's process nodes.
func (j *Job) ProcessNodes() []int {
	var out []int
	for i := range j.Pipeline {
		if j.Pipeline[i].Process != nil {
			out = append(out, i)
		}
	}
	return out
}
