package spec

import (
	"strings"

	"github.com/weir-stream/weir/dataflow/expr"
)

// KindTopN is the kind of a top-N node.
const KindTopN = "top_n"

// MaxTopN bounds top_n.n: the node keeps that many records per key and
// window.
const MaxTopN = 10000

// DefaultRankAs is the name of the rank field of top_n's output.
const DefaultRankAs = "rank"

// TopN emits, per key and window, the N records with the lowest (ASC) or
// highest (DESC) value of an expression, ranked 1 to N, when the watermark
// passes the window's end: Flink SQL's
//
//	SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start,
//	  window_end, key ORDER BY e DESC) AS rank FROM ...) WHERE rank <= N
//
// (docs/spec.md, "top_n"). The windows are its own tumbling windows, or,
// without Tumbling, those of the window whose results it reads (by their
// window_end).
type TopN struct {
	// N is how many records each key and window emits, 1 to MaxTopN.
	N int `yaml:"n,omitempty"`
	// OrderBy is an expression, optionally followed by ASC (the default)
	// or DESC, as in SQL: "price DESC".
	OrderBy string `yaml:"order_by,omitempty"`
	// Tumbling gives the node tumbling event-time windows of its own;
	// without it the input must be a window's results.
	Tumbling Duration `yaml:"tumbling,omitempty"`
	// RankAs names the rank field of the output (default "rank").
	RankAs string `yaml:"rank_as,omitempty"`
	// Late is drop (default; counted) or side_output (to "<node>.late").
	Late string `yaml:"late,omitempty"`
}

// ParseOrderBy splits "e [ASC|DESC]" (either case) into the expression
// and whether the order is descending.
func ParseOrderBy(s string) (e string, desc bool) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexAny(s, " \t\n")
	if i < 0 {
		return s, false
	}
	switch strings.ToLower(s[i+1:]) {
	case "asc":
		return strings.TrimSpace(s[:i]), false
	case "desc":
		return strings.TrimSpace(s[:i]), true
	}
	return s, false
}

func (v *validator) topN(i int, n *Node) {
	p := nodePath(i) + ".top_n"
	t := n.TopN
	if t.N < 1 || t.N > MaxTopN {
		v.errorf(p+".n", "must be between 1 and %d, got %d", MaxTopN, t.N)
	}
	if e, _ := ParseOrderBy(t.OrderBy); e == "" {
		v.errorf(p+".order_by", "required: an expression, optionally followed by ASC or DESC, such as \"price DESC\"")
	}
	switch {
	case t.Tumbling < 0:
		v.errorf(p+".tumbling", "must be > 0 (or left out to rank a window's results)")
	case t.Tumbling > 0 && t.Tumbling.D().Milliseconds() == 0:
		v.errorf(p+".tumbling", "must be at least 1ms (event time has millisecond resolution)")
	}
	if !isIdent(t.RankAs) {
		v.errorf(p+".rank_as", "want a field name, got %q", t.RankAs)
	}
	v.check(oneOf(p+".late", t.Late, "drop", "side_output"))
	v.keyedInput(i, n, KindTopN, "it ranks per key")
	v.eventTimeUpstream(i, p, "top_n")
}

// topNSchema checks top_n's expression against its input schema and
// returns its output schema.
func (v *validator) topNSchema(i int, n *Node, in map[string]string) map[string]string {
	p := nodePath(i) + ".top_n"
	t := n.TopN
	if e, _ := ParseOrderBy(t.OrderBy); e != "" {
		if err := compileExpr(e, in, expr.Any); err != nil {
			v.errorf(p+".order_by", "%v", err)
		}
	}
	if in == nil {
		return nil
	}
	if _, ok := in["window_end"]; !ok && t.Tumbling == 0 {
		v.errorf(p, "without tumbling, top_n ranks a window's results, and its input has no window_end field (set tumbling for windows of its own)")
	}
	res := make(map[string]string, len(in)+3)
	for k, t := range in {
		res[k] = t
	}
	if t.Tumbling > 0 {
		res["window_start"], res["window_end"] = "int", "int"
	}
	res[t.RankAs] = "int"
	return res
}
