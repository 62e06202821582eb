package spec

import "strings"

// KindRunning is the kind of a running (non-windowed) aggregate node.
const KindRunning = "running"

// Running aggregates each key's records since the key was first seen,
// without windows, and emits the key's updated result for every record,
// as a GROUP BY without a window does in Flink SQL (docs/spec.md,
// "running").
type Running struct {
	// Aggregates maps output field names to count(), sum(e), min(e),
	// max(e) or avg(e), as in a window.
	Aggregates Fields `yaml:"aggregates,omitempty"`
	// TTL forgets a key that had no record for this long, in processing
	// time (0, the default: never); its next record starts afresh.
	TTL Duration `yaml:"ttl,omitempty"`
}

// RunningAggregates are the aggregate functions a running node takes.
var RunningAggregates = []string{"count", "sum", "min", "max", "avg"}

func (v *validator) running(i int, n *Node) {
	p := nodePath(i) + ".running"
	r := n.Running
	v.fieldNames(p+".aggregates", r.Aggregates)
	if len(r.Aggregates) == 0 {
		v.errorf(p+".aggregates", "needs at least one aggregate such as count: count()")
	}
	key := n.keyAs(v.j)
	for _, a := range r.Aggregates {
		fn, _, err := ParseAggregate(a.Expr)
		switch {
		case err != nil:
			v.errorf(p+".aggregates."+a.Name, "%v", err)
		case !isRunningAggregate(fn):
			v.errorf(p+".aggregates."+a.Name, "%s is not a running aggregate (want %s)", fn, orList(RunningAggregates))
		}
		if a.Name == key {
			v.errorf(p+".aggregates."+a.Name, "clashes with the key field of the output (%s)", key)
		}
	}
	switch {
	case r.TTL < 0:
		v.errorf(p+".ttl", "must be >= 0 (0: keys are never forgotten)")
	case r.TTL > 0 && r.TTL.D().Milliseconds() == 0:
		v.errorf(p+".ttl", "must be at least 1ms")
	}
	v.keyedInput(i, n, KindRunning, "it aggregates per key")
}

func isRunningAggregate(fn string) bool {
	for _, f := range RunningAggregates {
		if f == fn {
			return true
		}
	}
	return false
}

// runningSchema is the schema of a running node's output.
func (n *Node) runningSchema(j *Job, in map[string]string) map[string]string {
	res := map[string]string{n.keyAs(j): n.keyType(j, in)}
	for _, a := range n.Running.Aggregates {
		fn, _, err := ParseAggregate(a.Expr)
		if err != nil {
			continue
		}
		switch fn {
		case "count":
			res[a.Name] = "int"
		case "avg":
			res[a.Name] = "float"
		default:
			res[a.Name] = "any"
		}
	}
	return res
}

// keyType is the type of the key of a keyed node's input, "any" when it
// is not known.
func (n *Node) keyType(j *Job, in map[string]string) string {
	if len(n.Inputs) == 1 && in != nil {
		if u := j.Node(n.Inputs[0]); u != nil && u.KeyBy != nil {
			if t, ok := in[strings.TrimSpace(u.KeyBy.Expr)]; ok {
				return t
			}
		}
	}
	return "any"
}
