package spec

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-stream/weir/dataflow"
)

// Node kinds, as returned by Node.Kind.
const (
	KindSource  = "source"
	KindMap     = "map"
	KindSelect  = "select"
	KindFilter  = "filter"
	KindFlatMap = "flat_map"
	KindKeyBy   = "key_by"
	KindWindow  = "window"
	KindUnion   = "union"
	KindSink    = "sink"
)

// TagLate is the side output of a window with late: side_output.
const TagLate = "late"

// Defaults applied by Parse; docs/spec.md lists them all.
const (
	DefaultFormat            = "json"
	DefaultStartFrom         = "earliest"
	DefaultIsolation         = "read_committed"
	DefaultDelivery          = "at-least-once"
	DefaultIdleTimeout       = 30 * time.Second
	DefaultWatermarkInterval = 200 * time.Millisecond
	DefaultLate              = "drop"
	DefaultFlatMapAs         = "value"
	DefaultKeyAs             = "key"
	DefaultDatagenProfile    = "access-log"
)

// DefaultTransactionTimeout is an exactly-once Kafka sink's transaction
// timeout: Kafka's default transaction.max.timeout.ms.
const DefaultTransactionTimeout = 15 * time.Minute

// Parse decodes a job spec strictly (an unknown field is an error), applies
// the defaults and validates the result. Its error is an Errors listing every
// problem with its path. Environment variables must have been expanded
// already (see ExpandEnv).
func Parse(data []byte) (job *Job, err error) {
	doc, more, err := safeUnmarshal(data)
	if err != nil {
		return nil, Errors{{Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if more {
		return nil, Errors{{Msg: "a job spec is a single YAML document; found a second one after ---"}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{Msg: "empty job spec: want a mapping with name and pipeline"}}
	}
	d := &decoder{}
	root := d.resolve(doc.Content[0])
	if root == nil || root.Kind != yaml.MappingNode {
		what := "null"
		if root != nil && !isNull(root) {
			what = kindName(root)
		}
		return nil, Errors{{Msg: fmt.Sprintf("a job spec must be a mapping with name and pipeline, got %s", what)}}
	}
	job = &Job{}
	d.decode(root, reflect.ValueOf(job).Elem(), "")
	if d.aborted {
		return nil, d.errs
	}
	job.SetDefaults()
	errs := append(d.errs, explicitZeros(d.zeros)...)
	errs = append(errs, job.validate()...)
	sortErrors(errs)
	if len(errs) > 0 {
		return nil, errs
	}
	return job, nil
}

// safeUnmarshal parses the first YAML document and reports whether another
// follows. It keeps a panic in the YAML parser from reaching a user.
func safeUnmarshal(data []byte) (doc yaml.Node, more bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot parse document: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return doc, false, nil
		}
		return doc, false, err
	}
	var next yaml.Node
	err = dec.Decode(&next)
	if errors.Is(err, io.EOF) {
		return doc, false, nil
	}
	return doc, err == nil, err
}

// Kind returns the node's kind (source, map, select, filter, flat_map,
// key_by, window, union or sink), or "" when none is set. When several are
// set (an invalid spec) it returns the first in that order.
func (n *Node) Kind() string {
	if k := n.kinds(); len(k) > 0 {
		return k[0]
	}
	return ""
}

func (n *Node) kinds() []string {
	var k []string
	add := func(set bool, name string) {
		if set {
			k = append(k, name)
		}
	}
	add(n.Source != nil, KindSource)
	add(n.Map != nil, KindMap)
	add(n.Select != nil, KindSelect)
	add(n.Filter != "", KindFilter)
	add(n.FlatMap != nil, KindFlatMap)
	add(n.KeyBy != nil, KindKeyBy)
	add(n.Window != nil, KindWindow)
	add(n.Union != nil, KindUnion)
	add(n.Process != nil, KindProcess)
	add(n.Dedup != nil, KindDedup)
	add(n.Running != nil, KindRunning)
	add(n.TopN != nil, KindTopN)
	add(n.Sink != nil, KindSink)
	return k
}

// Node returns the node with the given name, or nil.
func (j *Job) Node(name string) *Node {
	for i := range j.Pipeline {
		if j.Pipeline[i].Name == name {
			return &j.Pipeline[i]
		}
	}
	return nil
}

// Upstream returns the nodes the named node reads, in input order (a side
// output "win.late" counts as its node win). Unknown names are skipped.
func (j *Job) Upstream(name string) []*Node {
	n := j.Node(name)
	if n == nil {
		return nil
	}
	var out []*Node
	for _, in := range n.Inputs {
		node, _ := ParseInput(in)
		if u := j.Node(node); u != nil {
			out = append(out, u)
		}
	}
	return out
}

// Downstream returns the nodes that read the named node's output with the
// given tag ("" for the main output), in pipeline order.
func (j *Job) Downstream(name, tag string) []*Node {
	var out []*Node
	for i := range j.Pipeline {
		for _, in := range j.Pipeline[i].Inputs {
			if node, t := ParseInput(in); node == name && t == tag {
				out = append(out, &j.Pipeline[i])
				break
			}
		}
	}
	return out
}

// ParseInput splits an input reference into the node name and the side
// output tag ("" for the main output): "win.late" -> ("win", "late").
func ParseInput(ref string) (node, tag string) {
	node, tag, _ = strings.Cut(ref, ".")
	return node, tag
}

// SetDefaults fills every unset field with its default. Parse calls it; it
// is idempotent.
func (j *Job) SetDefaults() {
	if j.Parallelism == 0 {
		j.Parallelism = 1
	}
	if j.MaxParallelism == 0 {
		j.MaxParallelism = dataflow.DefaultMaxParallelism
	}
	if j.OnError == nil {
		j.OnError = &ErrorPolicy{}
	}
	j.OnError.setDefaults()
	if j.Checkpoint != nil {
		j.Checkpoint.setDefaults()
	}
	if j.Restart == nil {
		j.Restart = &Restart{}
	}
	j.Restart.setDefaults()
	for i := range j.Pipeline {
		n := &j.Pipeline[i]
		if n.Name == "" {
			k := n.Kind()
			if k == "" {
				k = "node"
			}
			n.Name = k + "-" + strconv.Itoa(i)
		}
		if n.Inputs == nil && i > 0 && n.Source == nil {
			n.Inputs = []string{j.Pipeline[i-1].Name}
		}
		if n.Parallelism == 0 {
			n.Parallelism = j.Parallelism
		}
		if n.OnError == nil {
			p := *j.OnError
			n.OnError = &p
		}
		n.OnError.setDefaults()
		n.setDefaults()
	}
}

func (p *ErrorPolicy) setDefaults() {
	if p.Action == "" {
		p.Action = OnErrorFail
		if p.Topic != "" || len(p.Brokers) > 0 {
			p.Action = OnErrorDeadLetter
		}
	}
}

func (n *Node) setDefaults() {
	if s := n.Source; s != nil {
		if k := s.Kafka; k != nil {
			def(&k.Format, DefaultFormat)
			def(&k.StartFrom, DefaultStartFrom)
			def(&k.Isolation, DefaultIsolation)
		}
		if g := s.Datagen; g != nil {
			if g.Nexmark != nil {
				def(&g.Profile, ProfileNexmark)
			}
			def(&g.Profile, DefaultDatagenProfile)
		}
		if e := s.EventTime; e != nil {
			if e.IdleTimeout == nil {
				d := Duration(DefaultIdleTimeout)
				e.IdleTimeout = &d
			}
			if e.WatermarkInterval == 0 {
				e.WatermarkInterval = Duration(DefaultWatermarkInterval)
			}
		}
	}
	if f := n.FlatMap; f != nil {
		def(&f.As, DefaultFlatMapAs)
	}
	if k := n.KeyBy; k != nil && k.As == "" {
		if e := strings.TrimSpace(k.Expr); isIdent(e) {
			k.As = e
		} else {
			k.As = DefaultKeyAs
		}
	}
	if w := n.Window; w != nil {
		def(&w.Late, DefaultLate)
	}
	if d := n.Dedup; d != nil {
		def(&d.Late, DefaultLate)
	}
	if t := n.TopN; t != nil {
		def(&t.Late, DefaultLate)
		def(&t.RankAs, DefaultRankAs)
	}
	if s := n.Sink; s != nil {
		if k := s.Kafka; k != nil {
			def(&k.Format, DefaultFormat)
			def(&k.Delivery, DefaultDelivery)
			if k.Delivery == DeliveryExactlyOnce && k.TransactionTimeout == 0 {
				k.TransactionTimeout = Duration(DefaultTransactionTimeout)
			}
		}
		if o := s.Stdout; o != nil {
			def(&o.Format, DefaultFormat)
		}
		if f := s.File; f != nil {
			def(&f.Format, DefaultFormat)
		}
	}
}

func def(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// isIdent reports whether s is a plain field name usable as an expression
// variable.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	switch s {
	case "true", "false", "nil", "and", "or", "not", "in", "matches", "contains", "startsWith", "endsWith", "let":
		return false
	}
	return true
}

// sortErrors orders errors by the pipeline node they concern (job-level
// ones first), keeping the order of discovery within a node.
func sortErrors(es Errors) {
	nodeOf := func(e *FieldError) int {
		var i int
		if _, err := fmt.Sscanf(e.Path, "pipeline[%d]", &i); err != nil {
			return -1
		}
		return i
	}
	slices.SortStableFunc(es, func(a, b *FieldError) int { return cmp.Compare(nodeOf(a), nodeOf(b)) })
}
