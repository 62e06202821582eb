package spec

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/weir-stream/weir/dataflow/expr"
)

// MaxMaxParallelism bounds max_parallelism (the number of key groups).
const MaxMaxParallelism = 32768

var (
	jobNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$`)
	nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
)

// Validate checks a job whose defaults are set (see SetDefaults) and returns
// an Errors with every problem, or nil.
func (j *Job) Validate() error { return j.validate().Err() }

type validator struct {
	j     *Job
	errs  Errors
	index map[string]int // node name -> pipeline index (first occurrence)
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func nodePath(i int) string { return fmt.Sprintf("pipeline[%d]", i) }

func (j *Job) validate() Errors {
	v := &validator{j: j, index: map[string]int{}}
	switch {
	case j.Name == "":
		v.errorf("name", "required")
	case !jobNameRE.MatchString(j.Name):
		v.errorf("name", "%q: use letters, digits, '_', '.' and '-' (at most 200, starting with a letter or digit)", j.Name)
	}
	if j.MaxParallelism < 1 || j.MaxParallelism > MaxMaxParallelism {
		v.errorf("max_parallelism", "must be between 1 and %d, got %d", MaxMaxParallelism, j.MaxParallelism)
	}
	v.parallelism("parallelism", j.Parallelism)
	v.errorPolicy("on_error", j.OnError)
	v.checkpoint("checkpoint", j.Checkpoint)
	v.restart("restart", j.Restart)
	if len(j.Pipeline) == 0 {
		v.errorf("pipeline", "needs at least one node (a source and a sink)")
		return v.errs
	}
	for i := range j.Pipeline {
		n := &j.Pipeline[i]
		if n.Name == "" {
			continue
		}
		if k, dup := v.index[n.Name]; dup {
			v.errorf(nodePath(i)+".name", "%q is already the name of %s", n.Name, nodePath(k))
			continue
		}
		v.index[n.Name] = i
	}
	sinks := 0
	for i := range j.Pipeline {
		n := &j.Pipeline[i]
		if n.Sink != nil {
			sinks++
		}
		v.node(i, n)
	}
	if sinks == 0 {
		v.errorf("pipeline", "needs at least one sink")
	}
	order, cyclic := v.topo()
	for _, i := range cyclic {
		v.errorf(nodePath(i)+".inputs", "node %q is part of a cycle", j.Pipeline[i].Name)
	}
	v.expressions(order)
	return v.errs
}

func (v *validator) parallelism(path string, p int) {
	maxP := v.j.MaxParallelism
	if maxP < 1 || maxP > MaxMaxParallelism {
		maxP = MaxMaxParallelism
	}
	if p < 1 || p > maxP {
		v.errorf(path, "must be between 1 and max_parallelism (%d), got %d", maxP, p)
	}
}

func (v *validator) errorPolicy(path string, p *ErrorPolicy) {
	if p == nil {
		return
	}
	switch p.Action {
	case OnErrorFail, OnErrorSkip:
		if p.Topic != "" || len(p.Brokers) > 0 || p.TLS != nil || p.SASL != nil {
			v.errorf(path, "topic, brokers, tls and sasl are only for action dead_letter")
		}
	case OnErrorDeadLetter:
		if p.Topic == "" {
			v.errorf(path+".topic", "required for dead_letter")
		}
		v.brokers(path+".brokers", p.Brokers)
		v.kafkaSecurity(path, p.TLS, p.SASL)
	default:
		v.errorf(path+".action", "want fail, skip or dead_letter, got %q", p.Action)
	}
}

func (v *validator) brokers(path string, bs []string) {
	if len(bs) == 0 {
		v.errorf(path, "required (a list of host:port)")
	}
	for i, b := range bs {
		if strings.TrimSpace(b) == "" {
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "empty broker address")
		}
	}
}

func oneOf(path string, got string, want ...string) *FieldError {
	for _, w := range want {
		if got == w {
			return nil
		}
	}
	return &FieldError{Path: path, Msg: fmt.Sprintf("want %s, got %q", orList(want), got)}
}

func orList(ws []string) string {
	if len(ws) == 1 {
		return ws[0]
	}
	return strings.Join(ws[:len(ws)-1], ", ") + " or " + ws[len(ws)-1]
}

func (v *validator) check(e *FieldError) {
	if e != nil {
		v.errs = append(v.errs, e)
	}
}

func (v *validator) node(i int, n *Node) {
	p := nodePath(i)
	if n.Name != "" && !nodeNameRE.MatchString(n.Name) {
		v.errorf(p+".name", "%q: use letters, digits, '_' and '-' (at most 100, starting with a letter or digit)", n.Name)
	}
	kinds := n.kinds()
	switch len(kinds) {
	case 0:
		v.errorf(p, "needs exactly one of source, map, select, filter, flat_map, key_by, window, union, process, dedup, running, top_n, join or sink")
	case 1:
	default:
		v.errorf(p, "has %s; a node has exactly one kind (use a new node for each step)", strings.Join(kinds, " and "))
	}
	v.parallelism(p+".parallelism", n.Parallelism)
	v.errorPolicy(p+".on_error", n.OnError)
	if n.Partition != "" {
		v.check(oneOf(p+".partition", n.Partition, "rebalance", "broadcast"))
	}
	v.inputs(i, n)

	switch {
	case n.Source != nil:
		v.source(p+".source", n.Source)
	case n.Map != nil:
		v.fieldNames(p+".map", n.Map)
		if len(n.Map) == 0 {
			v.errorf(p+".map", "needs at least one field")
		}
	case n.Select != nil:
		v.fieldNames(p+".select", n.Select)
		if len(n.Select) == 0 {
			v.errorf(p+".select", "needs at least one field")
		}
	case n.FlatMap != nil:
		f := n.FlatMap
		if (f.Explode == "") == (f.Split == "") {
			v.errorf(p+".flat_map", "needs exactly one of explode or split")
		}
		if f.Separator != "" && f.Split == "" {
			v.errorf(p+".flat_map.separator", "only for split")
		}
		if !isIdent(f.As) {
			v.errorf(p+".flat_map.as", "want a field name, got %q", f.As)
		}
	case n.KeyBy != nil:
		if strings.TrimSpace(n.KeyBy.Expr) == "" {
			v.errorf(p+".key_by.expr", "required")
		}
		if !isIdent(n.KeyBy.As) {
			v.errorf(p+".key_by.as", "want a field name, got %q", n.KeyBy.As)
		}
	case n.Window != nil:
		v.window(i, n)
	case n.Process != nil:
		v.process(i, n)
	case n.Dedup != nil:
		v.dedup(i, n)
	case n.Running != nil:
		v.running(i, n)
	case n.TopN != nil:
		v.topN(i, n)
	case n.Join != nil:
		v.join(i, n)
	case n.Sink != nil:
		v.sink(p+".sink", n.Sink)
	}
}

func (v *validator) inputs(i int, n *Node) {
	p := nodePath(i) + ".inputs"
	if n.Source != nil {
		if len(n.Inputs) > 0 {
			v.errorf(p, "a source has no inputs")
		}
		if n.Partition != "" {
			v.errorf(nodePath(i)+".partition", "a source has no input to partition")
		}
		return
	}
	if len(n.Inputs) == 0 {
		v.errorf(p, "needs at least one input (the first node of a pipeline must be a source)")
	}
	seen := map[string]bool{}
	for k, in := range n.Inputs {
		ip := fmt.Sprintf("%s[%d]", p, k)
		if seen[in] {
			v.errorf(ip, "%q is listed twice", in)
			continue
		}
		seen[in] = true
		name, tag := ParseInput(in)
		u, ok := v.index[name]
		if !ok {
			v.errorf(ip, "no node named %q", name)
			continue
		}
		if name == n.Name {
			v.errorf(ip, "a node cannot read itself")
			continue
		}
		up := &v.j.Pipeline[u]
		if up.Sink != nil {
			v.errorf(ip, "%q is a sink and has no output", name)
		}
		if up.KeyBy != nil && n.Partition != "" {
			v.errorf(nodePath(i)+".partition", "cannot be set on a node that reads key_by %q (always hash)", name)
		}
		if tag == "" {
			continue
		}
		if up.Process != nil {
			// A user operator's side outputs are its own (sdk.SideOutput).
			if !isIdent(tag) {
				v.errorf(ip, "side output tag %q: want a name of letters, digits and '_'", tag)
			}
			continue
		}
		has, enabled := up.lateOutput()
		if tag != TagLate || !has {
			v.errorf(ip, "unknown side output %q: only a window, dedup or top_n has one, \"<node>.late\"", in)
			continue
		}
		if !enabled {
			v.errorf(ip, "%s %q has no late side output (set late: side_output on it)", up.Kind(), name)
		}
	}
}

func (v *validator) source(p string, s *Source) {
	var set []string
	if s.Kafka != nil {
		set = append(set, "kafka")
	}
	if s.Datagen != nil {
		set = append(set, "datagen")
	}
	if s.Connector != "" {
		set = append(set, "connector")
	}
	if s.Config != nil && s.Connector == "" {
		v.errorf(p+".config", "only with connector: (the config of a registered source)")
	}
	switch {
	case len(set) > 1:
		v.errorf(p, "has %s; a source has exactly one connector", strings.Join(set, " and "))
	case s.Connector != "":
		v.connectorID(p+".connector", s.Connector)
	case s.Kafka != nil:
		k := s.Kafka
		v.brokers(p+".kafka.brokers", k.Brokers)
		if k.Topic == "" {
			v.errorf(p+".kafka.topic", "required")
		}
		v.check(oneOf(p+".kafka.format", k.Format, "json", "raw", FormatAvro, FormatProtobuf, FormatJSONSchema))
		v.schemaRegistry(p+".kafka", k.Format, k.SchemaRegistry, false)
		v.check(oneOf(p+".kafka.start_from", k.StartFrom, "earliest", "latest"))
		v.check(oneOf(p+".kafka.isolation", k.Isolation, "read_committed", "read_uncommitted"))
		if k.KeyField != "" && !k.Upsert {
			v.errorf(p+".kafka.key_field", "only with upsert: true")
		} else if k.Upsert && !isIdent(k.KeyField) {
			v.errorf(p+".kafka.key_field", "want a field name, got %q", k.KeyField)
		}
		v.kafkaSecurity(p+".kafka", k.TLS, k.SASL)
	case s.Datagen != nil:
		g := s.Datagen
		v.check(oneOf(p+".datagen.profile", g.Profile, "access-log", "sequence", ProfileNexmark))
		v.nexmark(p+".datagen", g)
		if g.Count < 0 {
			v.errorf(p+".datagen.count", "must be >= 0 (0: unbounded), got %d", g.Count)
		}
		if g.Rate < 0 || math.IsNaN(g.Rate) || math.IsInf(g.Rate, 0) {
			v.errorf(p+".datagen.rate", "must be >= 0 (0: as fast as possible), got %v", g.Rate)
		}
	default:
		v.errorf(p, "needs a connector: kafka, datagen or connector: <id> (a registered source)")
	}
	for name, typ := range s.Schema {
		if !isIdent(name) {
			v.errorf(p+".schema."+name, "want a field name usable in expressions")
		}
		v.check(oneOf(p+".schema."+name, typ, "string", "int", "float", "bool", "list", "map", "any"))
	}
	if e := s.EventTime; e != nil {
		if strings.TrimSpace(e.Field) == "" {
			v.errorf(p+".event_time.field", "required (an expression giving epoch milliseconds)")
		}
		if e.MaxOutOfOrderness < 0 {
			v.errorf(p+".event_time.max_out_of_orderness", "must be >= 0")
		}
		if e.IdleTimeout != nil && *e.IdleTimeout < 0 {
			v.errorf(p+".event_time.idle_timeout", "must be >= 0 (0 disables)")
		}
		if e.WatermarkInterval <= 0 {
			v.errorf(p+".event_time.watermark_interval", "must be > 0")
		}
	}
}

func (v *validator) sink(p string, s *Sink) {
	var set []string
	if s.Kafka != nil {
		set = append(set, "kafka")
	}
	if s.Stdout != nil {
		set = append(set, "stdout")
	}
	if s.File != nil {
		set = append(set, "file")
	}
	if s.Discard != nil {
		set = append(set, "discard")
	}
	if s.Connector != "" {
		set = append(set, "connector")
		v.connectorID(p+".connector", s.Connector)
	}
	if s.Config != nil && s.Connector == "" {
		v.errorf(p+".config", "only with connector: (the config of a registered sink)")
	}
	if len(set) != 1 {
		if len(set) == 0 {
			v.errorf(p, "needs a connector: kafka, stdout, file, discard or connector: <id> (a registered sink)")
		} else {
			v.errorf(p, "has %s; a sink has exactly one connector", strings.Join(set, " and "))
		}
		return
	}
	switch {
	case s.Kafka != nil:
		k := s.Kafka
		v.brokers(p+".kafka.brokers", k.Brokers)
		if k.Topic == "" {
			v.errorf(p+".kafka.topic", "required")
		}
		v.check(oneOf(p+".kafka.format", k.Format, "json", "raw", FormatAvro, FormatProtobuf, FormatJSONSchema))
		v.schemaRegistry(p+".kafka", k.Format, k.SchemaRegistry, true)
		v.kafkaDelivery(p+".kafka", k)
		v.kafkaSecurity(p+".kafka", k.TLS, k.SASL)
	case s.Stdout != nil:
		v.check(oneOf(p+".stdout.format", s.Stdout.Format, "json", "raw"))
	case s.File != nil:
		if s.File.Path == "" {
			v.errorf(p+".file.path", "required")
		}
		v.check(oneOf(p+".file.format", s.File.Format, "json", "raw"))
	}
}

// connectorID checks the form of a registered connector's id; whether
// this binary has it is the registry's check at submit.
func (v *validator) connectorID(p, id string) {
	if !OperatorIDRE.MatchString(id) {
		v.errorf(p, "%q is not a connector id: want dot-separated lower-case names such as acme.ledger", id)
	}
}

func (v *validator) window(i int, n *Node) {
	p := nodePath(i) + ".window"
	w := n.Window
	var shapes []string
	if w.Tumbling != 0 {
		shapes = append(shapes, "tumbling")
	}
	if w.Sliding != nil {
		shapes = append(shapes, "sliding")
	}
	if w.Session != nil {
		shapes = append(shapes, "session")
	}
	switch {
	case len(shapes) > 1:
		v.errorf(p, "has %s; set exactly one", strings.Join(shapes, " and "))
	case len(shapes) == 0:
		v.errorf(p, "needs tumbling or sliding (or session)")
	case w.Session != nil:
		if w.Session.Gap <= 0 {
			v.errorf(p+".session.gap", "must be > 0")
		} else if w.Session.Gap.D().Milliseconds() == 0 {
			v.errorf(p+".session.gap", "must be at least 1ms (event time has millisecond resolution)")
		}
	case w.Sliding == nil:
		if w.Tumbling < 0 {
			v.errorf(p+".tumbling", "must be > 0")
		}
	default:
		s := w.Sliding
		if s.Size <= 0 {
			v.errorf(p+".sliding.size", "must be > 0")
		}
		if s.Slide <= 0 {
			v.errorf(p+".sliding.slide", "must be > 0")
		} else if s.Size > 0 && s.Slide > s.Size {
			v.errorf(p+".sliding.slide", "must not exceed size (%s > %s)", s.Slide.D(), s.Size.D())
		}
	}
	for _, d := range []struct {
		name string
		d    Duration
	}{{"tumbling", w.Tumbling}, {"allowed_lateness", w.AllowedLateness}} {
		if d.d > 0 && d.d.D().Milliseconds() == 0 {
			v.errorf(p+"."+d.name, "must be at least 1ms (event time has millisecond resolution)")
		}
	}
	if w.Sliding != nil && ((w.Sliding.Size > 0 && w.Sliding.Size.D().Milliseconds() == 0) || (w.Sliding.Slide > 0 && w.Sliding.Slide.D().Milliseconds() == 0)) {
		v.errorf(p+".sliding", "sizes must be at least 1ms (event time has millisecond resolution)")
	}
	if w.AllowedLateness < 0 {
		v.errorf(p+".allowed_lateness", "must be >= 0")
	}
	v.check(oneOf(p+".late", w.Late, "drop", "side_output"))
	procTime := w.Time == TimeProcessing
	if w.Time != "" {
		v.check(oneOf(p+".time", w.Time, TimeEvent, TimeProcessing))
	}
	if procTime {
		// A record's processing time is never late: no lateness, no late
		// side output, and no sliding windows (one window per record).
		if w.Sliding != nil {
			v.errorf(p+".sliding", "processing-time windows are tumbling only (time: processing)")
		}
		if w.AllowedLateness != 0 {
			v.errorf(p+".allowed_lateness", "processing-time windows have no lateness (time: processing)")
		}
		if w.Late == "side_output" {
			v.errorf(p+".late", "processing-time windows have no late records (time: processing)")
		}
		if w.Session != nil {
			// A session is the span of its records' times: on the
			// arrival clock it would depend on how fast they came.
			v.errorf(p+".session", "session windows follow event time; remove time: processing")
		}
	}
	v.fieldNames(p+".aggregates", w.Aggregates)
	if len(w.Aggregates) == 0 {
		v.errorf(p+".aggregates", "needs at least one aggregate such as count: count()")
	}
	for _, a := range w.Aggregates {
		if _, _, err := ParseAggregate(a.Expr); err != nil {
			v.errorf(p+".aggregates."+a.Name, "%v", err)
		}
		switch a.Name {
		case "window_start", "window_end", n.keyAs(v.j):
			v.errorf(p+".aggregates."+a.Name, "clashes with a field of the window's output (key, window_start, window_end)")
		}
	}
	// The key field is a field of the results beside window_start and
	// window_end, so it cannot be named like them (a key_by: window_end
	// after an earlier window's results).
	if k := n.keyAs(v.j); k == "window_start" || k == "window_end" {
		name, _ := ParseInput(n.Inputs[0])
		v.errorf(p, "the key field %q (the as of key_by %q) clashes with the window's own %s field; name the key with key_by.as, such as key_by: {expr: %s, as: %s_key}",
			k, name, k, k, k)
	}
	// The input must be exactly one key_by.
	if len(n.Inputs) != 1 {
		if len(n.Inputs) > 1 {
			v.errorf(nodePath(i)+".inputs", "a window reads exactly one key_by node, got %d inputs (union them before key_by)", len(n.Inputs))
		}
	} else if name, tag := ParseInput(n.Inputs[0]); tag == "" {
		if u, ok := v.index[name]; ok && v.j.Pipeline[u].KeyBy == nil {
			v.errorf(nodePath(i)+".inputs", "a window reads a key_by node; %q is a %s", name, v.j.Pipeline[u].Kind())
		}
	} else {
		v.errorf(nodePath(i)+".inputs", "a window reads a key_by node, not a side output")
	}
	if procTime {
		return
	}
	// Every source upstream must assign event time.
	seen := map[int]bool{}
	var walk func(k int)
	walk = func(k int) {
		if seen[k] {
			return
		}
		seen[k] = true
		u := &v.j.Pipeline[k]
		if u.Source != nil && u.Source.EventTime == nil {
			v.errorf(p, "windows need event time: source %q has no event_time", u.Name)
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

// keyAs is the key field name of a window's output: the as of its key_by.
func (n *Node) keyAs(j *Job) string {
	if len(n.Inputs) != 1 {
		return DefaultKeyAs
	}
	name, _ := ParseInput(n.Inputs[0])
	if u := j.Node(name); u != nil && u.KeyBy != nil && u.KeyBy.As != "" {
		return u.KeyBy.As
	}
	return DefaultKeyAs
}

// topo orders the pipeline's indexes topologically, breaking ties by
// pipeline order, and returns the nodes on or behind a cycle apart.
func (v *validator) topo() (order, cyclic []int) {
	order, rest := topoOrder(v.j)
	// Only report the nodes on a cycle, not every node downstream of one.
	for _, i := range rest {
		if onCycle(v.j, v.index, i) {
			cyclic = append(cyclic, i)
		}
	}
	return order, cyclic
}

func topoOrder(j *Job) (order, rest []int) {
	index := map[string]int{}
	for i := range j.Pipeline {
		if _, dup := index[j.Pipeline[i].Name]; !dup {
			index[j.Pipeline[i].Name] = i
		}
	}
	n := len(j.Pipeline)
	indeg := make([]int, n)
	out := make([][]int, n)
	for i := range j.Pipeline {
		for _, in := range j.Pipeline[i].Inputs {
			name, _ := ParseInput(in)
			if u, ok := index[name]; ok {
				indeg[i]++
				out[u] = append(out[u], i)
			}
		}
	}
	done := make([]bool, n)
	for len(order) < n {
		next := -1
		for i := range n {
			if !done[i] && indeg[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		done[next] = true
		order = append(order, next)
		for _, d := range out[next] {
			indeg[d]--
		}
	}
	for i := range n {
		if !done[i] {
			rest = append(rest, i)
		}
	}
	return order, rest
}

func onCycle(j *Job, index map[string]int, start int) bool {
	seen := map[int]bool{}
	stack := []int{start}
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, in := range j.Pipeline[k].Inputs {
			name, _ := ParseInput(in)
			u, ok := index[name]
			if !ok {
				continue
			}
			if u == start {
				return true
			}
			if !seen[u] {
				seen[u] = true
				stack = append(stack, u)
			}
		}
	}
	return false
}

// expressions compiles every expression against the schema flowing into its
// node, in topological order.
func (v *validator) expressions(order []int) {
	out := map[string]map[string]string{} // "node" or "node.tag" -> schema
	known := map[string]bool{}
	for _, i := range order {
		n := &v.j.Pipeline[i]
		p := nodePath(i)
		in := v.inputSchema(n, out, known)
		compile := func(path, src string, want expr.Want, schema map[string]string) {
			if strings.TrimSpace(src) == "" {
				v.errorf(path, "empty expression")
				return
			}
			if err := compileExpr(src, schema, want); err != nil {
				v.errorf(path, "%v", err)
			}
		}
		var res map[string]string
		switch {
		case n.Source != nil:
			res = validSchema(n.Source.Schema)
			if k := n.Source.Kafka; k != nil && k.Upsert && res != nil {
				res = maps.Clone(res)
				res[k.KeyField] = "string"
				res[DeletedField] = "any"
			}
			if e := n.Source.EventTime; e != nil && strings.TrimSpace(e.Field) != "" {
				compile(p+".source.event_time.field", e.Field, expr.Any, res)
			}
		case n.Map != nil:
			for _, f := range n.Map {
				compile(p+".map."+f.Name, f.Expr, expr.Any, in)
			}
			if in != nil {
				res = maps.Clone(in)
				for _, f := range n.Map {
					res[f.Name] = "any"
				}
			}
		case n.Select != nil:
			res = map[string]string{}
			for _, f := range n.Select {
				compile(p+".select."+f.Name, f.Expr, expr.Any, in)
				res[f.Name] = "any"
			}
		case n.Filter != "":
			compile(p+".filter", n.Filter, expr.Bool, in)
			res = in
		case n.FlatMap != nil:
			if n.FlatMap.Explode != "" {
				compile(p+".flat_map.explode", n.FlatMap.Explode, expr.Any, in)
			}
			if n.FlatMap.Split != "" {
				compile(p+".flat_map.split", n.FlatMap.Split, expr.Any, in)
			}
			if in != nil {
				res = maps.Clone(in)
				res[n.FlatMap.As] = "any"
			}
		case n.KeyBy != nil:
			if strings.TrimSpace(n.KeyBy.Expr) != "" {
				compile(p+".key_by.expr", n.KeyBy.Expr, expr.Any, in)
			}
			res = in
		case n.Window != nil:
			keyType := "any"
			if len(n.Inputs) == 1 {
				if u := v.j.Node(n.Inputs[0]); u != nil && u.KeyBy != nil && in != nil {
					if t, ok := in[strings.TrimSpace(u.KeyBy.Expr)]; ok {
						keyType = t
					}
				}
			}
			res = map[string]string{n.keyAs(v.j): keyType, "window_start": "int", "window_end": "int"}
			for _, a := range n.Window.Aggregates {
				fn, arg, err := ParseAggregate(a.Expr)
				if err != nil {
					continue
				}
				if arg != "" {
					compile(p+".window.aggregates."+a.Name, arg, expr.Any, in)
				}
				switch fn {
				case "count", "count_distinct":
					res[a.Name] = "int"
				case "avg":
					res[a.Name] = "float"
				default:
					res[a.Name] = "any"
				}
			}
			if n.Window.Late == "side_output" {
				out[n.Name+"."+TagLate] = in
				known[n.Name+"."+TagLate] = true
			}
		case n.Union != nil:
			res = in
		case n.Running != nil:
			for _, a := range n.Running.Aggregates {
				if _, arg, err := ParseAggregate(a.Expr); err == nil && arg != "" {
					compile(p+".running.aggregates."+a.Name, arg, expr.Any, in)
				}
			}
			res = n.runningSchema(v.j, in)
		case n.TopN != nil:
			res = v.topNSchema(i, n, in)
			if n.TopN.Late == "side_output" {
				out[n.Name+"."+TagLate] = in
				known[n.Name+"."+TagLate] = true
			}
		case n.Dedup != nil:
			res = in
			if n.Dedup.Late == "side_output" {
				out[n.Name+"."+TagLate] = in
				known[n.Name+"."+TagLate] = true
			}
		case n.Join != nil:
			side := func(ref string) map[string]string {
				if !known[ref] {
					return nil
				}
				return out[ref]
			}
			res = v.joinSchema(i, n, side(n.Join.Left), side(n.Join.Right), joinKeyType)
		case n.Sink != nil:
			if k := n.Sink.Kafka; k != nil && k.Key != "" {
				compile(p+".sink.kafka.key", k.Key, expr.Any, in)
			}
		}
		out[n.Name] = res
		known[n.Name] = true
	}
}

// inputSchema is the schema of a node's input: its single input's, or the
// common schema of several, or nil (unknown) when they differ.
func (v *validator) inputSchema(n *Node, out map[string]map[string]string, known map[string]bool) map[string]string {
	var s map[string]string
	for k, in := range n.Inputs {
		if !known[in] {
			return nil
		}
		if k == 0 {
			s = out[in]
		} else if !maps.Equal(s, out[in]) || s == nil || out[in] == nil {
			return nil
		}
	}
	return s
}

// validSchema returns s when every type in it is known, else nil so that
// expressions are compiled without types (the bad types are reported
// elsewhere).
func validSchema(s map[string]string) map[string]string {
	for name, t := range s {
		if !isIdent(name) {
			return nil
		}
		switch t {
		case "string", "int", "float", "bool", "list", "map", "any":
		default:
			return nil
		}
	}
	return s
}

// compileExpr compiles src to report its errors.
func compileExpr(src string, schema map[string]string, want expr.Want) error {
	_, err := expr.Compile(src, schema, want)
	return err
}

// ParseAggregate splits an aggregate such as "sum(bytes * 2)" into the function and its argument
// expression: count() takes no argument (count(*) is accepted), the others
// take one.
func ParseAggregate(s string) (fn, arg string, err error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return "", "", fmt.Errorf("aggregate %q: want count(), sum(e), min(e), max(e), avg(e), count_distinct(e), first(e), last(e), arg_max(e) or arg_min(e)", s)
	}
	fn = strings.ToLower(strings.TrimSpace(s[:open]))
	arg = strings.TrimSpace(s[open+1 : len(s)-1])
	if !balanced(s[open:]) {
		return "", "", fmt.Errorf("aggregate %q: want one call such as sum(bytes)", s)
	}
	switch fn {
	case "count":
		if arg != "" && arg != "*" {
			return "", "", fmt.Errorf("aggregate %q: count takes no argument", s)
		}
		return fn, "", nil
	case "sum", "min", "max", "avg", "count_distinct", "first", "last", "arg_max", "arg_min":
		if arg == "" {
			return "", "", fmt.Errorf("aggregate %q: %s needs an expression, such as %s(bytes)", s, fn, fn)
		}
		return fn, arg, nil
	}
	return "", "", fmt.Errorf("aggregate %q: unknown function %q (want count, sum, min, max, avg, count_distinct, first, last, arg_max or arg_min)", s, fn)
}

// balanced reports whether s, which starts with '(' and ends with ')', is
// one parenthesised group: the first '(' closes at the last ')'. Quoted
// strings are skipped.
func balanced(s string) bool {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'', '`':
			quote = c
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 && i != len(s)-1 {
				return false
			}
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0 && quote == 0
}

func (v *validator) fieldNames(p string, fs Fields) {
	seen := map[string]bool{}
	for _, f := range fs {
		if strings.TrimSpace(f.Name) == "" {
			v.errorf(p, "empty field name")
		} else if seen[f.Name] {
			v.errorf(p+"."+f.Name, "defined more than once")
		}
		seen[f.Name] = true
	}
}

// Kafka sink delivery guarantees.
const (
	DeliveryAtLeastOnce = "at-least-once"
	DeliveryExactlyOnce = "exactly-once"
)

// MaxTransactionTimeout bounds transaction_timeout: Kafka carries it in
// milliseconds as a 32-bit integer.
const MaxTransactionTimeout = time.Duration(math.MaxInt32) * time.Millisecond

// MinTransactionTimeout is the least transaction_timeout accepted.
const MinTransactionTimeout = time.Second

func (v *validator) kafkaDelivery(p string, k *KafkaSink) {
	switch k.Delivery {
	case DeliveryAtLeastOnce:
		if k.TransactionTimeout != 0 {
			v.errorf(p+".transaction_timeout", "only for delivery exactly-once, not %s", k.Delivery)
		}
		return
	case DeliveryExactlyOnce:
	default:
		v.errorf(p+".delivery", "want at-least-once or exactly-once, got %q", k.Delivery)
		return
	}
	if t := k.TransactionTimeout.D(); t < MinTransactionTimeout || t > MaxTransactionTimeout {
		v.errorf(p+".transaction_timeout", "must be between %s and %s, got %s", MinTransactionTimeout, MaxTransactionTimeout, t)
	}
	switch c := v.j.Checkpoint; {
	case c == nil:
		v.errorf(p+".delivery", "exactly-once commits a transaction when a checkpoint completes: add a checkpoint block to the job (or use delivery at-least-once)")
	case c.Mode != "" && c.Mode != ModeExactlyOnce:
		v.errorf(p+".delivery", "exactly-once needs checkpoint.mode %s (aligned barriers), got %s", ModeExactlyOnce, c.Mode)
	}
}

// explicitZeros refuses a parallelism or max_parallelism written as 0: the
// zero value means "unset" to SetDefaults, which would quietly run it at the
// default instead.
func explicitZeros(paths []string) Errors {
	var errs Errors
	for _, p := range paths {
		switch lastKey(p) {
		case "parallelism", "max_parallelism":
			errs = append(errs, &FieldError{Path: p, Msg: "must be at least 1, got 0 (leave it out for the default)"})
		}
	}
	return errs
}
