package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// KindJoin is the kind of a node that joins two keyed streams.
const KindJoin = "join"

// DeletedField marks a changelog record that deletes its key's row: an
// upsert Kafka source's tombstone, as Debezium's unwrap transform writes
// it.
const DeletedField = "__deleted"

// DefaultUpsertKeyField is the field an upsert Kafka source puts the
// message key into.
const DefaultUpsertKeyField = "key"

// The fields a windowed join's results carry: the window's bounds.
const (
	JoinWindowStart = "window_start"
	JoinWindowEnd   = "window_end"
)

// Join types.
const (
	JoinInner = "inner"
	JoinLeft  = "left" // left outer: unmatched left records with the right side null
)

// Join joins two keyed streams on their keys (docs/spec.md, "join"). Left
// and Right name key_by nodes; they are the node's inputs, left first.
// Exactly one of Interval and Window says which records of the two sides
// meet.
type Join struct {
	Left  string `yaml:"left,omitempty"`
	Right string `yaml:"right,omitempty"`
	// Type is inner (default) or left (left outer).
	Type string `yaml:"type,omitempty"`
	// Interval joins a left record with every right record of its key
	// whose time is within [left.ts - lower, left.ts + upper].
	Interval *JoinInterval `yaml:"interval,omitempty"`
	// Window joins the records of a key that fall into the same window.
	Window *JoinWindow `yaml:"window,omitempty"`
	// Lookup joins each left record with the latest right record of its
	// key as of its arrival: the right input is a table (a changelog),
	// where a record with "__deleted": true deletes its key's row.
	Lookup *struct{} `yaml:"lookup,omitempty"`
	// LeftPrefix and RightPrefix are put before the names of the left and
	// the right record's fields in the output (default none); a name both
	// sides would give the output is an error.
	LeftPrefix  string `yaml:"left_prefix,omitempty"`
	RightPrefix string `yaml:"right_prefix,omitempty"`

	// rightFields are the right input's field names when its schema is
	// known (set by validation): an unmatched left record of a left join
	// has them as null.
	rightFields []string
	// using is the key field both inputs name alike (key_by.as), which
	// the output has once, from the left, as SQL's JOIN ... USING (set by
	// validation).
	using string
}

// JoinInterval bounds an interval join: right.ts within
// [left.ts - Lower, left.ts + Upper]. Either may be negative as long as
// the interval is not empty.
type JoinInterval struct {
	Lower Duration `yaml:"lower,omitempty"`
	Upper Duration `yaml:"upper,omitempty"`
}

// JoinWindow is the window of a windowed join: tumbling, sliding or
// session.
type JoinWindow struct {
	Tumbling Duration     `yaml:"tumbling,omitempty"`
	Sliding  *Sliding     `yaml:"sliding,omitempty"`
	Session  *JoinSession `yaml:"session,omitempty"`
}

// JoinSession is a session window of a join: the records of a key, of
// both sides, less than Gap apart.
type JoinSession struct {
	Gap Duration `yaml:"gap,omitempty"`
}

// RightFields returns the right input's field names (sorted) when its
// schema is known at submit, else nil. Parse sets them.
func (j *Join) RightFields() []string { return j.rightFields }

// Using returns the key field name both inputs share (their key_by.as),
// which the output carries once, from the left record; "" when they
// differ. Parse sets it.
func (j *Join) Using() string { return j.using }

// Inputs are the join's inputs in the order the node reads them.
func (j *Join) Inputs() []string {
	var in []string
	for _, s := range []string{j.Left, j.Right} {
		if s != "" {
			in = append(in, s)
		}
	}
	return in
}

func (j *Join) setDefaults() {
	def(&j.Type, JoinInner)
}

func (v *validator) join(i int, n *Node) {
	p := nodePath(i) + ".join"
	jn := n.Join
	v.check(oneOf(p+".type", jn.Type, JoinInner, JoinLeft))
	var modes []string
	for _, m := range []struct {
		set  bool
		name string
	}{{jn.Interval != nil, "interval"}, {jn.Window != nil, "window"}, {jn.Lookup != nil, "lookup"}} {
		if m.set {
			modes = append(modes, m.name)
		}
	}
	switch {
	case len(modes) > 1:
		v.errorf(p, "has %s; set exactly one", strings.Join(modes, " and "))
	case len(modes) == 0:
		v.errorf(p, "needs interval (an interval join), window (a windowed join) or lookup (a lookup join against a table)")
	case jn.Lookup != nil:
	case jn.Interval != nil:
		iv := jn.Interval
		for _, d := range []struct {
			name string
			d    Duration
		}{{"lower", iv.Lower}, {"upper", iv.Upper}} {
			if d.d != 0 && d.d.D().Milliseconds() == 0 {
				v.errorf(p+".interval."+d.name, "must be 0 or at least 1ms in size (event time has millisecond resolution)")
			}
		}
		if iv.Lower.D().Milliseconds()+iv.Upper.D().Milliseconds() < 0 {
			v.errorf(p+".interval", "is empty: right.ts within [left.ts - %s, left.ts + %s] never holds (want lower + upper >= 0)", iv.Lower.D(), iv.Upper.D())
		}
	default:
		w := jn.Window
		var shapes []string
		for _, m := range []struct {
			set  bool
			name string
		}{{w.Tumbling != 0, "tumbling"}, {w.Sliding != nil, "sliding"}, {w.Session != nil, "session"}} {
			if m.set {
				shapes = append(shapes, m.name)
			}
		}
		switch {
		case len(shapes) > 1:
			v.errorf(p+".window", "has %s; set exactly one", strings.Join(shapes, " and "))
		case len(shapes) == 0:
			v.errorf(p+".window", "needs tumbling, sliding or session")
		case w.Session != nil:
			if w.Session.Gap.D().Milliseconds() <= 0 {
				v.errorf(p+".window.session.gap", "must be at least 1ms")
			}
		case w.Sliding == nil:
			if w.Tumbling.D().Milliseconds() <= 0 {
				v.errorf(p+".window.tumbling", "must be at least 1ms")
			}
		default:
			s := w.Sliding
			if s.Size.D().Milliseconds() <= 0 {
				v.errorf(p+".window.sliding.size", "must be at least 1ms")
			}
			if s.Slide.D().Milliseconds() <= 0 {
				v.errorf(p+".window.sliding.slide", "must be at least 1ms")
			} else if s.Size > 0 && s.Slide > s.Size {
				v.errorf(p+".window.sliding.slide", "must not exceed size (%s > %s)", s.Slide.D(), s.Size.D())
			}
		}
	}
	for _, pf := range []struct{ name, v string }{{"left_prefix", jn.LeftPrefix}, {"right_prefix", jn.RightPrefix}} {
		if pf.v != "" && !isIdent(pf.v) {
			v.errorf(p+"."+pf.name, "%q: want letters, digits and '_' (prefixed field names must stay usable in expressions)", pf.v)
		}
	}

	// The inputs are left and right, in that order; each a key_by.
	if !slices.Equal(n.Inputs, jn.Inputs()) {
		v.errorf(nodePath(i)+".inputs", "a join reads join.left and join.right: leave inputs out (got %v)", n.Inputs)
	}
	if jn.Left != "" && jn.Left == jn.Right {
		v.errorf(p+".right", "%q is also the left input: join two key_by nodes (two key_by nodes may read one stream)", jn.Right)
	}
	for _, side := range []struct{ name, ref string }{{"left", jn.Left}, {"right", jn.Right}} {
		sp := p + "." + side.name
		if side.ref == "" {
			v.errorf(sp, "required: the name of a key_by node")
			continue
		}
		name, tag := ParseInput(side.ref)
		u, ok := v.index[name]
		switch {
		case tag != "":
			v.errorf(sp, "%q is a side output; a join reads key_by nodes", side.ref)
		case !ok:
			v.errorf(sp, "no node named %q", name)
		case v.j.Pipeline[u].KeyBy == nil:
			v.errorf(sp, "a join reads key_by nodes (records meet by key); %q is a %s", name, v.j.Pipeline[u].Kind())
		}
	}
	// Every source upstream must assign event time: interval and windowed
	// joins are driven by the watermark. A lookup join is not.
	if jn.Lookup == nil {
		v.needsEventTime(i, p, "interval and windowed joins")
	}
}

// needsEventTime reports every source upstream of node i without
// event_time.
func (v *validator) needsEventTime(i int, p, what string) {
	seen := map[int]bool{}
	var walk func(k int)
	walk = func(k int) {
		if seen[k] {
			return
		}
		seen[k] = true
		u := &v.j.Pipeline[k]
		if u.Source != nil && u.Source.EventTime == nil {
			v.errorf(p, "%s need event time: source %q has no event_time", what, u.Name)
		}
		for _, in := range u.Inputs {
			name, _ := ParseInput(in)
			if x, ok := v.index[name]; ok {
				walk(x)
			}
		}
	}
	walk(i)
}

// joinSchema checks the join's keys and output names against the inputs'
// schemas (nil: unknown) and returns the output schema (nil when unknown).
func (v *validator) joinSchema(i int, n *Node, left, right map[string]string, keyType func(*Node, map[string]string) string) map[string]string {
	p := nodePath(i) + ".join"
	jn := n.Join
	lu, ru := v.j.Node(jn.Left), v.j.Node(jn.Right)
	jn.using = ""
	if lu != nil && ru != nil && lu.KeyBy != nil && ru.KeyBy != nil && lu.KeyBy.As == ru.KeyBy.As {
		jn.using = lu.KeyBy.As
	}
	jn.rightFields = nil
	if right != nil {
		for _, f := range slices.Sorted(maps.Keys(right)) {
			if f != jn.using && f != DeletedField {
				jn.rightFields = append(jn.rightFields, f)
			}
		}
	}
	// Keys meet only when they are equal values: an int key never
	// equals a string key.
	if lu != nil && ru != nil && lu.KeyBy != nil && ru.KeyBy != nil {
		lt, rt := keyType(lu, left), keyType(ru, right)
		if lt != "any" && rt != "any" && lt != rt && !(isNumber(lt) && isNumber(rt)) {
			v.errorf(p+".right", "key_by %q gives %s keys but the left input %q gives %s keys: they never match", jn.Right, rt, jn.Left, lt)
		}
	}
	if left == nil || right == nil {
		return nil
	}
	out := make(map[string]string, len(left)+len(right)+2)
	if jn.Window != nil {
		out[JoinWindowStart], out[JoinWindowEnd] = "int", "int"
	}
	for _, name := range slices.Sorted(maps.Keys(left)) {
		o := jn.LeftPrefix + name
		if _, dup := out[o]; dup {
			v.errorf(p, "the left input has a field %q, which a windowed join's results carry: set left_prefix", o)
			continue
		}
		out[o] = left[name]
	}
	for _, name := range jn.rightFields {
		o := jn.RightPrefix + name
		if _, dup := out[o]; dup {
			if o == JoinWindowStart || o == JoinWindowEnd {
				v.errorf(p, "the right input has a field %q, which a windowed join's results carry: set right_prefix", o)
			} else {
				v.errorf(p, "both inputs have a field %q: set left_prefix or right_prefix (such as right_prefix: r_)", o)
			}
			continue
		}
		out[o] = right[name]
		if jn.Type == JoinLeft {
			out[o] = "any" // null when no right record matched
		}
	}
	return out
}

func isNumber(t string) bool { return t == "int" || t == "float" }

// joinKeyType is the type of a key_by's key given its input schema: the
// field's type when the expression is a plain field, else any.
func joinKeyType(u *Node, in map[string]string) string {
	if in == nil || u.KeyBy == nil {
		return "any"
	}
	if t, ok := in[strings.TrimSpace(u.KeyBy.Expr)]; ok {
		return t
	}
	return "any"
}

// String renders the join for messages, such as "interval join of a and b".
func (j *Join) String() string {
	kind := "window"
	switch {
	case j.Interval != nil:
		kind = "interval"
	case j.Lookup != nil:
		kind = "lookup"
	}
	return fmt.Sprintf("%s %s join of %s and %s", j.Type, kind, j.Left, j.Right)
}
