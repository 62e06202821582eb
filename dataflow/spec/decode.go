package spec

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the YAML nodes the decoder visits, so that aliases
// expanding into each other (a "billion laughs" document) cannot exhaust
// memory or time.
const maxNodes = 200000

// decoder is a strict YAML-to-struct decoder working on yaml.v3 nodes. Unlike
// yaml.v3's own decoding it reports every problem with its path in the
// document (pipeline[1].window.tumbling) and keeps going after an error.
type decoder struct {
	errs    Errors
	visited int
	aborted bool
	// zeros are the paths of integers written as 0, which SetDefaults
	// cannot tell from absent ones (see explicitZeros).
	zeros []string
}

func (d *decoder) errorf(path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType    = reflect.TypeFor[Duration]()
	fieldsType      = reflect.TypeFor[Fields]()
	errorPolicyType = reflect.TypeFor[ErrorPolicy]()
	keyByType       = reflect.TypeFor[KeyBy]()
	emptyStructType = reflect.TypeFor[struct{}]()
)

// resolve follows aliases and counts the work done.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	d.visited++
	if d.visited > maxNodes && !d.aborted {
		d.aborted = true
		d.errorf("", "document too large or too many aliases")
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.DocumentNode:
		return "a document"
	}
	return "an alias"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mappingPairs returns the key/value pairs of a mapping, expanding merge keys
// (<<: *anchor) so that explicit keys win over merged ones.
func (d *decoder) mappingPairs(n *yaml.Node, path string) (keys []string, vals []*yaml.Node) {
	seen := map[string]int{}
	var merged [][2]*yaml.Node
	add := func(k string, v *yaml.Node, explicit bool) {
		if i, ok := seen[k]; ok {
			if explicit {
				vals[i] = v
			}
			return
		}
		seen[k] = len(keys)
		keys = append(keys, k)
		vals = append(vals, v)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := d.resolve(n.Content[i]), n.Content[i+1]
		if kn == nil || kn.Kind != yaml.ScalarNode {
			d.errorf(path, "mapping keys must be plain strings")
			continue
		}
		if kn.Tag == "!!merge" {
			merged = append(merged, [2]*yaml.Node{kn, vn})
			continue
		}
		if _, dup := seen[kn.Value]; dup {
			d.errorf(join(path, kn.Value), "defined more than once")
			continue
		}
		add(kn.Value, vn, true)
	}
	for _, m := range merged {
		src := d.resolve(m[1])
		var maps []*yaml.Node
		switch {
		case src != nil && src.Kind == yaml.MappingNode:
			maps = []*yaml.Node{src}
		case src != nil && src.Kind == yaml.SequenceNode:
			for _, c := range src.Content {
				maps = append(maps, d.resolve(c))
			}
		}
		for _, mm := range maps {
			if mm == nil || mm.Kind != yaml.MappingNode {
				d.errorf(path, "<< must merge mappings")
				continue
			}
			ks, vs := d.mappingPairs(mm, path)
			for i := range ks {
				add(ks[i], vs[i], false)
			}
		}
	}
	return keys, vals
}

// decode decodes n into v (addressable), reporting problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.aborted {
		return
	}
	n = d.resolve(n)
	if n == nil {
		return
	}
	t := v.Type()
	switch t {
	case durationType:
		d.decodeDuration(n, v, path)
		return
	case fieldsType:
		d.decodeFields(n, v, path)
		return
	case configType:
		d.decodeConfig(n, v, path)
		return
	case errorPolicyType:
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			v.Set(reflect.ValueOf(ErrorPolicy{Action: n.Value}))
			return
		}
	case keyByType:
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			v.Set(reflect.ValueOf(KeyBy{Expr: n.Value}))
			return
		}
	case kafkaTLSPtrType:
		if d.decodeKafkaTLS(n, v, path) {
			return
		}
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			// A key present with no value ("union:", "discard:") still
			// selects the kind; a nil Duration stays unset.
			if t.Elem().Kind() == reflect.Struct && t.Elem() != durationType {
				v.Set(reflect.New(t.Elem()))
			}
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			if t == emptyStructType {
				d.errorf(path, "takes no settings (write it as `%s: {}`), got %s", lastKey(path), kindName(n))
			} else {
				d.errorf(path, "want a mapping, got %s", kindName(n))
			}
			return
		}
		d.decodeStruct(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(path, "want a string, got %s", kindName(n))
			return
		}
		if !isNull(n) {
			v.SetString(n.Value)
		}
	case reflect.Int, reflect.Int64:
		if isNull(n) {
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if n.Kind != yaml.ScalarNode || err != nil || v.OverflowInt(i) {
			d.errorf(path, "want an integer, got %s", kindName(n))
			return
		}
		if i == 0 {
			d.zeros = append(d.zeros, path)
		}
		v.SetInt(i)
	case reflect.Float64:
		if isNull(n) {
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(path, "want a number, got %s", kindName(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		if isNull(n) {
			return
		}
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			d.errorf(path, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.errorf(path, "cannot decode into %s", t)
	}
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(path, "want a duration such as 5s or 1m, got %s", kindName(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(path, "want a duration such as 5s or 1m, got %q", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) decodeFields(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.ValueOf(Fields{}))
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(path, "want a mapping of field names to expressions, got %s", kindName(n))
		return
	}
	keys, vals := d.mappingPairs(n, path)
	fs := make(Fields, 0, len(keys))
	for i, k := range keys {
		vn := d.resolve(vals[i])
		if vn == nil || vn.Kind != yaml.ScalarNode || isNull(vn) {
			kn := "null"
			if vn != nil && !isNull(vn) {
				kn = kindName(vn)
			}
			d.errorf(join(path, k), "want an expression, got %s", kn)
			continue
		}
		fs = append(fs, Field{Name: k, Expr: vn.Value})
	}
	v.Set(reflect.ValueOf(fs))
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	keys, vals := d.mappingPairs(n, path)
	for i, k := range keys {
		f, ok := fieldByTag(t, k)
		if !ok {
			d.errorf(join(path, k), "unknown field")
			continue
		}
		d.decode(vals[i], v.FieldByIndex(f.Index), join(path, k))
	}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == key && tag != "" && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if isNull(n) {
		return
	}
	if n.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String {
		// A single string stands for a list: comma-separated, so that
		// "brokers: ${KAFKA_BROKERS}" works with "host1:9092,host2:9092".
		var out []string
		for s := range strings.SplitSeq(n.Value, ",") {
			out = append(out, strings.TrimSpace(s))
		}
		v.Set(reflect.ValueOf(out))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(path, "want a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
		d.errorf(path, "want a mapping, got %s", kindName(n))
		return
	}
	keys, vals := d.mappingPairs(n, path)
	m := reflect.MakeMapWithSize(t, len(keys))
	for i, k := range keys {
		e := reflect.New(t.Elem()).Elem()
		d.decode(vals[i], e, join(path, k))
		m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
	}
	v.Set(m)
}

// UnmarshalYAML decodes an ordered mapping of names to expressions.
func (f *Fields) UnmarshalYAML(n *yaml.Node) error {
	var d decoder
	d.decode(n, reflect.ValueOf(f).Elem(), "")
	return d.errs.Err()
}

// MarshalYAML writes the fields as a mapping, in order.
func (f Fields) MarshalYAML() (any, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, x := range f {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: x.Name},
			&yaml.Node{Kind: yaml.ScalarNode, Value: x.Expr})
	}
	return m, nil
}

// UnmarshalYAML accepts a scalar action (fail, skip, dead_letter) or a mapping.
func (p *ErrorPolicy) UnmarshalYAML(n *yaml.Node) error {
	var d decoder
	d.decode(n, reflect.ValueOf(p).Elem(), "")
	return d.errs.Err()
}

// UnmarshalYAML accepts an expression or a mapping {expr, as}.
func (k *KeyBy) UnmarshalYAML(n *yaml.Node) error {
	var d decoder
	d.decode(n, reflect.ValueOf(k).Elem(), "")
	return d.errs.Err()
}
