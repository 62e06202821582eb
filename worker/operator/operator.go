package operator

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
)

// New builds the operator of a transform node (map, select, filter,
// flat_map, key_by, window, union, dedup, running or top_n). job is the
// whole spec, used to find the key_by feeding a window or running node; it
// may be nil, in which case their results name the key "key".
func New(job *spec.Job, node *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	if node == nil {
		return nil, errors.New("operator: nil node")
	}
	name := nodeName(job, node)
	op, err := build(job, node, name, ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	return op, nil
}

func build(job *spec.Job, node *spec.Node, name string, ctx *dataflow.Context) (dataflow.Operator, error) {
	b := base{node: name}
	b.setContext(ctx)
	var kinds []string
	if node.Map != nil {
		kinds = append(kinds, "map")
	}
	if node.Select != nil {
		kinds = append(kinds, "select")
	}
	if node.Filter != "" {
		kinds = append(kinds, "filter")
	}
	if node.FlatMap != nil {
		kinds = append(kinds, "flat_map")
	}
	if node.KeyBy != nil {
		kinds = append(kinds, "key_by")
	}
	if node.Window != nil {
		kinds = append(kinds, "window")
	}
	if node.Union != nil {
		kinds = append(kinds, "union")
	}
	if node.Dedup != nil {
		kinds = append(kinds, "dedup")
	}
	if node.Running != nil {
		kinds = append(kinds, "running")
	}
	if node.TopN != nil {
		kinds = append(kinds, "top_n")
	}
	if node.Source != nil || node.Sink != nil {
		return nil, errors.New("sources and sinks are not transforms")
	}
	switch len(kinds) {
	case 0:
		return nil, errors.New("no transform set (want one of map, select, filter, flat_map, key_by, window, union, dedup, running, top_n)")
	case 1:
	default:
		return nil, fmt.Errorf("several transforms set (%s); a node has exactly one", strings.Join(kinds, ", "))
	}
	switch kinds[0] {
	case "map":
		return newMap(b, node.Map)
	case "select":
		return newSelect(b, node.Select)
	case "filter":
		return newFilter(b, node.Filter)
	case "flat_map":
		return newFlatMap(b, node.FlatMap)
	case "key_by":
		return newKeyBy(b, node.KeyBy)
	case "window":
		w, err := newWindow(b, node.Window, keyFieldFor(job, node))
		if err != nil {
			return nil, err
		}
		if w.procTime {
			return procWindow{w}, nil
		}
		return w, nil
	case "dedup":
		return newDedup(b, node.Dedup, ctx)
	case "running":
		return newRunning(b, node.Running, keyFieldFor(job, node), ctx)
	case "top_n":
		return newTopN(b, node.TopN, ctx)
	default:
		return &union{base: b}, nil
	}
}

// base is what every operator shares: its node name, context and error
// policy.
type base struct {
	node  string
	ctx   *dataflow.Context
	onErr dataflow.ErrorHandler
}

func (b *base) setContext(ctx *dataflow.Context) {
	if ctx == nil {
		return
	}
	b.ctx = ctx
	b.onErr = ctx.OnError
	if b.onErr == nil {
		b.onErr = dataflow.FailOnError{Node: b.node}
	}
}

// Open takes the context the operator runs in; expressions were compiled by
// New.
func (b *base) Open(ctx *dataflow.Context) error {
	b.setContext(ctx)
	if b.onErr == nil {
		b.onErr = dataflow.FailOnError{Node: b.node}
	}
	return nil
}

// Close releases nothing.
func (b *base) Close(dataflow.Output) error { return nil }

// fail hands a record that failed to the error policy. It returns nil when
// the policy dropped the record, and an error naming the node otherwise.
func (b *base) fail(r *dataflow.Record, err error) error {
	h := b.onErr
	if h == nil {
		h = dataflow.FailOnError{Node: b.node}
	}
	herr := h.Handle(r, nil, err)
	if herr == nil {
		return nil
	}
	var re *dataflow.RecordError
	if errors.As(herr, &re) {
		return herr
	}
	return fmt.Errorf("node %s: %w", b.node, herr)
}

func (b *base) metrics() *dataflow.Counters {
	if b.ctx == nil {
		return nil
	}
	return b.ctx.Metrics
}

// nodeName is the node's name, or the spec's default "<kind>-<index>" when
// the spec was not defaulted.
func nodeName(job *spec.Job, node *spec.Node) string {
	if node.Name != "" {
		return node.Name
	}
	if i := indexOf(job, node); i >= 0 {
		return kindOf(node) + "-" + strconv.Itoa(i)
	}
	return kindOf(node)
}

func kindOf(n *spec.Node) string {
	switch {
	case n.Source != nil:
		return "source"
	case n.Map != nil:
		return "map"
	case n.Select != nil:
		return "select"
	case n.Filter != "":
		return "filter"
	case n.FlatMap != nil:
		return "flat_map"
	case n.KeyBy != nil:
		return "key_by"
	case n.Window != nil:
		return "window"
	case n.Union != nil:
		return "union"
	case n.Dedup != nil:
		return "dedup"
	case n.Running != nil:
		return "running"
	case n.TopN != nil:
		return "top_n"
	case n.Sink != nil:
		return "sink"
	}
	return "node"
}

func indexOf(job *spec.Job, node *spec.Node) int {
	if job == nil {
		return -1
	}
	for i := range job.Pipeline {
		if &job.Pipeline[i] == node {
			return i
		}
	}
	if node.Name != "" {
		for i := range job.Pipeline {
			if job.Pipeline[i].Name == node.Name {
				return i
			}
		}
	}
	return -1
}

// keyFieldFor names the key in a window's results: the As of the nearest
// key_by upstream of the window (default: its expression when that is a
// plain field name, else "key").
func keyFieldFor(job *spec.Job, window *spec.Node) string {
	start := indexOf(job, window)
	if start < 0 {
		return defaultKeyAs
	}
	seen := map[int]bool{start: true}
	queue := upstream(job, start)
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		if seen[i] {
			continue
		}
		seen[i] = true
		n := &job.Pipeline[i]
		if n.KeyBy != nil {
			return keyAs(n.KeyBy)
		}
		queue = append(queue, upstream(job, i)...)
	}
	return defaultKeyAs
}

const defaultKeyAs = "key"

func keyAs(k *spec.KeyBy) string {
	if k.As != "" {
		return k.As
	}
	if e := strings.TrimSpace(k.Expr); isIdent(e) {
		return e
	}
	return defaultKeyAs
}

// upstream returns the pipeline indexes of node i's inputs.
func upstream(job *spec.Job, i int) []int {
	n := &job.Pipeline[i]
	if n.Source != nil {
		return nil
	}
	if len(n.Inputs) == 0 {
		if i > 0 {
			return []int{i - 1}
		}
		return nil
	}
	var out []int
	for _, ref := range n.Inputs {
		name, _, _ := strings.Cut(ref, ".")
		for j := range job.Pipeline {
			if nodeName(job, &job.Pipeline[j]) == name {
				out = append(out, j)
				break
			}
		}
	}
	return out
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// recordEnv evaluates expressions over one record. A plain field name is
// read from the record; the others share one environment map, built at
// most once per record.
type recordEnv struct {
	fields dataflow.Fields
	env    map[string]any
}

func (e *recordEnv) eval(p *expr.Program) (any, error) {
	if p.IsField() {
		return p.Eval(e.fields)
	}
	if e.env == nil {
		if e.env = e.fields.Map(); e.env == nil {
			e.env = map[string]any{}
		}
	}
	return p.EvalEnv(e.env)
}

// compile compiles an expression for a node without a schema (the spec was
// checked against it at submit): any name compiles, and a field missing
// from a record is an error at run time (expr.ErrMissingField).
func compile(what, src string, want expr.Want) (*expr.Program, error) {
	p, err := expr.Compile(src, nil, want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}
