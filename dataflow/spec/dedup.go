package spec

// KindDedup is the kind of a deduplication node.
const KindDedup = "dedup"

// Dedup passes the first record of each key and drops the records of the
// key that follow it within a bound of event time (docs/spec.md, "dedup"):
// a record passes when its event time is at least Within after that of
// the last record of its key that passed.
type Dedup struct {
	// Within is how long, in event time, a key is remembered after a
	// record of it passed.
	Within Duration `yaml:"within,omitempty"`
	// Late is drop (default; counted) or side_output (to "<node>.late"):
	// what happens to a record at or behind the watermark, whose
	// duplicates may have been forgotten already.
	Late string `yaml:"late,omitempty"`
}

func (v *validator) dedup(i int, n *Node) {
	p := nodePath(i) + ".dedup"
	d := n.Dedup
	switch {
	case d.Within <= 0:
		v.errorf(p+".within", "required: how long a key is remembered after a record of it passed, in event time, > 0 (such as 10m)")
	case d.Within.D().Milliseconds() == 0:
		v.errorf(p+".within", "must be at least 1ms (event time has millisecond resolution)")
	}
	v.check(oneOf(p+".late", d.Late, "drop", "side_output"))
	v.keyedInput(i, n, KindDedup, "it remembers each key")
	v.eventTimeUpstream(i, p, "dedup")
}

// keyedInput checks that node i, a keyed operator of the given kind,
// reads exactly one key_by node; why says what it keeps per key.
func (v *validator) keyedInput(i int, n *Node, kind, why string) {
	if len(n.Inputs) != 1 {
		if len(n.Inputs) > 1 {
			v.errorf(nodePath(i)+".inputs", "%s reads exactly one key_by node, got %d inputs (union them before key_by)", kind, len(n.Inputs))
		}
		return
	}
	name, tag := ParseInput(n.Inputs[0])
	if tag != "" {
		v.errorf(nodePath(i)+".inputs", "%s reads a key_by node, not a side output", kind)
		return
	}
	if u, ok := v.index[name]; ok && v.j.Pipeline[u].KeyBy == nil {
		v.errorf(nodePath(i)+".inputs", "%s reads a key_by node (%s); %q is a %s", kind, why, name, v.j.Pipeline[u].Kind())
	}
}

// eventTimeUpstream checks that every source upstream of node i assigns
// event time; what names the node's kind in the error at path p.
func (v *validator) eventTimeUpstream(i int, p, what string) {
	seen := map[int]bool{}
	var walk func(k int)
	walk = func(k int) {
		if seen[k] {
			return
		}
		seen[k] = true
		u := &v.j.Pipeline[k]
		if u.Source != nil && u.Source.EventTime == nil {
			v.errorf(p, "%s needs event time: source %q has no event_time", what, u.Name)
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

// lateOutput reports whether the node has a late side output, and whether
// it is enabled (late: side_output): windows, dedup and top_n have one.
func (n *Node) lateOutput() (has, enabled bool) {
	switch {
	case n.Window != nil:
		return true, n.Window.Late == "side_output"
	case n.Dedup != nil:
		return true, n.Dedup.Late == "side_output"
	case n.TopN != nil:
		return true, n.TopN.Late == "side_output"
	}
	return false, false
}
