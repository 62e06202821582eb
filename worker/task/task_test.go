package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	datapb "github.com/weir-stream/weir/proto/data/v1"
	"github.com/weir-stream/weir/worker/exchange"
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines, %d at start\n%s", runtime.NumGoroutine(), before, buf)
				code = 1
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	os.Exit(code)
}

func eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// worker is one in-process worker's data plane.
type worker struct {
	id   string
	addr string
	x    *exchange.Exchange
}

func startWorker(t testing.TB, id string) *worker {
	t.Helper()
	x := exchange.New(nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	x.Register(s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		x.Close()
		s.Stop()
		<-done
	})
	return &worker{id: id, addr: lis.Addr().String(), x: x}
}

// --- fake builder and operators ---

type fakeBuilder struct {
	sources map[string]func(*dataflow.Context) dataflow.Source
	ops     map[string]func(*dataflow.Context) dataflow.Operator
}

func (b *fakeBuilder) Source(_ *spec.Job, n *spec.Node, ctx *dataflow.Context) (dataflow.Source, error) {
	f := b.sources[n.Name]
	if f == nil {
		return nil, fmt.Errorf("no source %q", n.Name)
	}
	return f(ctx), nil
}

func (b *fakeBuilder) Operator(_ *spec.Job, n *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	f := b.ops[n.Name]
	if f == nil {
		return nil, fmt.Errorf("no operator %q", n.Name)
	}
	return f(ctx), nil
}

// seqSource emits records i = subtask, subtask+par, ... < n (forever when
// n < 0) with key "k<i>", event time i, and a watermark every 100 records.
type seqSource struct {
	n      int
	ctx    *dataflow.Context
	closed *counter
}

func (s *seqSource) Open(ctx *dataflow.Context) error { s.ctx = ctx; return nil }
func (s *seqSource) Close() error                     { s.closed.inc(s.ctx.Node); return nil }
func (s *seqSource) Run(ctx context.Context, out dataflow.SourceOutput) error {
	for i := s.ctx.Subtask; s.n < 0 || i < s.n; i += s.ctx.Parallelism {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := dataflow.Record{Key: fmt.Sprintf("k%d", i), Time: int64(i), Fields: dataflow.FieldsOf(map[string]any{"i": int64(i)})}
		if err := out.Emit(&r); err != nil {
			return err
		}
		if i%100 == 0 {
			if err := out.EmitWatermark(int64(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// counter counts calls by name.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func newCounter() *counter { return &counter{m: map[string]int{}} }

func (c *counter) inc(k string) {
	c.mu.Lock()
	c.m[k]++
	c.mu.Unlock()
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// collected is what collector operators saw.
type collected struct {
	mu         sync.Mutex
	records    map[string][]int64 // "node/subtask" -> i values
	watermarks map[string][]int64
	wrongGroup []string
}

func newCollected() *collected {
	return &collected{records: map[string][]int64{}, watermarks: map[string][]int64{}}
}

func (c *collected) count(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records[k])
}

func (c *collected) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.records {
		n += len(r)
	}
	return n
}

func (c *collected) wms(k string) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.watermarks[k]...)
}

// collector records what it gets, checks key groups when keyed, and
// forwards everything.
type collector struct {
	c      *collected
	keyed  bool
	failAt int64 // fail on the record with this i (when > 0)
	ctx    *dataflow.Context
	name   string
	closed *counter
}

func (o *collector) Open(ctx *dataflow.Context) error {
	o.ctx = ctx
	o.name = fmt.Sprintf("%s/%d", ctx.Node, ctx.Subtask)
	return nil
}

func (o *collector) Process(r *dataflow.Record, out dataflow.Output) error {
	i, _ := r.Fields.Get("i").(int64)
	if o.failAt > 0 && i == o.failAt {
		return fmt.Errorf("boom at %d", i)
	}
	o.c.mu.Lock()
	o.c.records[o.name] = append(o.c.records[o.name], i)
	if o.keyed && !o.ctx.KeyGroups.Contains(dataflow.KeyGroup(r.Key, o.ctx.MaxParallelism)) {
		o.c.wrongGroup = append(o.c.wrongGroup, fmt.Sprintf("%v at %s", r.Key, o.name))
	}
	o.c.mu.Unlock()
	return out.Emit(r)
}

func (o *collector) ProcessWatermark(wm int64, out dataflow.Output) error {
	o.c.mu.Lock()
	o.c.watermarks[o.name] = append(o.c.watermarks[o.name], wm)
	o.c.mu.Unlock()
	return out.EmitWatermark(wm)
}

func (o *collector) Close(dataflow.Output) error { o.closed.inc(o.name); return nil }

// --- graphs and jobs ---

func vertex(id string, par int, nodes ...*spec.Node) *graph.Vertex {
	return &graph.Vertex{ID: id, Nodes: nodes, Parallelism: par}
}

func srcNode(name string) *spec.Node { return &spec.Node{Name: name, Source: &spec.Source{}} }
func opNode(name string) *spec.Node  { return &spec.Node{Name: name} }

// connect adds an edge to g.
func connect(g *graph.Graph, from *graph.Vertex, fromNode, tag string, to *graph.Vertex, p dataflow.Partitioning) {
	e := &graph.Edge{Index: len(g.Edges), From: from.ID, FromNode: fromNode, Tag: tag, To: to.ID, Partitioning: p}
	g.Edges = append(g.Edges, e)
	from.Outputs = append(from.Outputs, e.Index)
	to.Inputs = append(to.Inputs, e.Index)
}

type job struct {
	g          *graph.Graph
	placements map[string][]*worker
	builder    Builder
	attempt    int64
}

type result struct {
	id       ID
	err      error
	counters *dataflow.Counters
}

// start runs every subtask of the job and returns their results as they
// end.
func (j *job) start(ctx context.Context) (<-chan result, map[string][]*dataflow.Counters) {
	addrs := map[string][]Address{}
	n := 0
	for v, ws := range j.placements {
		for _, w := range ws {
			addrs[v] = append(addrs[v], Address{WorkerID: w.id, DataAddr: w.addr})
			n++
		}
	}
	results := make(chan result, n)
	counters := map[string][]*dataflow.Counters{}
	for _, v := range j.g.Vertices {
		for i, w := range j.placements[v.ID] {
			d := Deployment{
				ID:            ID{JobID: "job-1", Attempt: j.attempt, VertexID: v.ID, Subtask: i},
				Graph:         j.g,
				Placements:    addrs,
				LocalWorkerID: w.id,
			}
			c := &dataflow.Counters{}
			counters[v.ID] = append(counters[v.ID], c)
			go func() {
				err := Run(ctx, d, Env{Builder: j.builder, Exchange: w.x}, c)
				results <- result{id: d.ID, err: err, counters: c}
			}()
		}
	}
	return results, counters
}

func waitAll(t *testing.T, results <-chan result, n int, timeout time.Duration) []result {
	t.Helper()
	var out []result
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for range n {
		select {
		case r := <-results:
			out = append(out, r)
		case <-timer.C:
			t.Fatalf("only %d of %d subtasks returned within %s", len(out), n, timeout)
		}
	}
	return out
}

func TestHashEdgeAcrossWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := startWorker(t, "A"), startWorker(t, "B")
	const n = 20000
	g := &graph.Graph{MaxParallelism: 128}
	src := vertex("src", 2, srcNode("src"))
	cnt := vertex("count", 2, opNode("count"))
	g.Vertices = []*graph.Vertex{src, cnt}
	connect(g, src, "src", "", cnt, dataflow.Hash)
	got, closed := newCollected(), newCounter()
	j := &job{g: g, attempt: 1, placements: map[string][]*worker{"src": {a, b}, "count": {a, b}},
		builder: &fakeBuilder{
			sources: map[string]func(*dataflow.Context) dataflow.Source{
				"src": func(*dataflow.Context) dataflow.Source { return &seqSource{n: n, closed: closed} }},
			ops: map[string]func(*dataflow.Context) dataflow.Operator{
				"count": func(*dataflow.Context) dataflow.Operator {
					return &collector{c: got, keyed: true, closed: closed}
				}},
		}}
	results, counters := j.start(ctx)
	for _, r := range waitAll(t, results, 4, 25*time.Second) {
		if r.err != nil {
			t.Fatalf("%s: %v", r.id, r.err)
		}
	}
	// Every record exactly once, at the subtask owning its key group.
	seen := make([]int, n)
	for sub := range 2 {
		for _, i := range got.records[fmt.Sprintf("count/%d", sub)] {
			seen[i]++
			kg := dataflow.KeyGroup(fmt.Sprintf("k%d", i), 128)
			if want := dataflow.SubtaskForKeyGroup(128, 2, kg); want != sub {
				t.Fatalf("record %d at subtask %d, owner is %d", i, sub, want)
			}
		}
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("record %d arrived %d times", i, c)
		}
	}
	if len(got.wrongGroup) > 0 {
		t.Fatalf("records outside the key groups: %v", got.wrongGroup[:min(5, len(got.wrongGroup))])
	}
	for sub := range 2 {
		name := fmt.Sprintf("count/%d", sub)
		wms := got.wms(name)
		if len(wms) == 0 || wms[len(wms)-1] != dataflow.MaxWatermark {
			t.Fatalf("%s: watermarks %v do not end with the max", name, wms)
		}
		for i := 1; i < len(wms); i++ {
			if wms[i] <= wms[i-1] {
				t.Fatalf("%s: watermark went from %d to %d", name, wms[i-1], wms[i])
			}
		}
		if closed.get(name) != 1 {
			t.Fatalf("%s closed %d times", name, closed.get(name))
		}
	}
	if closed.get("src") != 2 {
		t.Fatalf("sources closed %d times", closed.get("src"))
	}
	var srcOut, cntIn, cntOut int64
	for i := range 2 {
		srcOut += counters["src"][i].RecordsOut.Load()
		cntIn += counters["count"][i].RecordsIn.Load()
		cntOut += counters["count"][i].RecordsOut.Load()
	}
	if srcOut != n || cntIn != n || cntOut != n {
		t.Fatalf("counters: src out %d, count in %d, count out %d; want %d", srcOut, cntIn, cntOut, n)
	}
}

// tagger sends even records to the main output, odd ones to side "odd" and
// multiples of 5 also to side "nobody" (not consumed).
type tagger struct{ closed *counter }

func (tagger) Open(*dataflow.Context) error { return nil }
func (tagger) Process(r *dataflow.Record, out dataflow.Output) error {
	i := r.Fields.Get("i").(int64)
	if i%5 == 0 {
		if err := out.EmitSide("nobody", r); err != nil {
			return err
		}
	}
	if i%2 == 1 {
		return out.EmitSide("odd", r)
	}
	return out.Emit(r)
}
func (o tagger) Close(dataflow.Output) error { o.closed.inc("tagger"); return nil }

func TestChainSideOutputsAndPartitionings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := startWorker(t, "A")
	b := startWorker(t, "B")
	const n = 3000
	g := &graph.Graph{}
	head := vertex("src", 1, srcNode("src"), opNode("tagger"))
	even := vertex("even", 1, opNode("even"))
	odd := vertex("odd", 2, opNode("odd"))
	rr := vertex("rr", 2, opNode("rr"))
	g.Vertices = []*graph.Vertex{head, even, odd, rr}
	connect(g, head, "tagger", "", even, dataflow.Forward)
	connect(g, head, "tagger", "odd", odd, dataflow.Broadcast)
	connect(g, head, "tagger", "", rr, dataflow.Rebalance)
	got, closed := newCollected(), newCounter()
	coll := func(*dataflow.Context) dataflow.Operator { return &collector{c: got, closed: closed} }
	j := &job{g: g, attempt: 1,
		placements: map[string][]*worker{"src": {a}, "even": {a}, "odd": {a, b}, "rr": {b, a}},
		builder: &fakeBuilder{
			sources: map[string]func(*dataflow.Context) dataflow.Source{
				"src": func(*dataflow.Context) dataflow.Source { return &seqSource{n: n, closed: closed} }},
			ops: map[string]func(*dataflow.Context) dataflow.Operator{
				"tagger": func(*dataflow.Context) dataflow.Operator { return tagger{closed} },
				"even":   coll, "odd": coll, "rr": coll,
			},
		}}
	results, counters := j.start(ctx)
	for _, r := range waitAll(t, results, 6, 25*time.Second) {
		if r.err != nil {
			t.Fatalf("%s: %v", r.id, r.err)
		}
	}
	if c := got.count("even/0"); c != n/2 {
		t.Fatalf("even got %d, want %d", c, n/2)
	}
	for sub := range 2 {
		if c := got.count(fmt.Sprintf("odd/%d", sub)); c != n/2 {
			t.Fatalf("odd/%d got %d, want %d (broadcast)", sub, c, n/2)
		}
		if c := got.count(fmt.Sprintf("rr/%d", sub)); c != n/4 {
			t.Fatalf("rr/%d got %d, want %d (round robin)", sub, c, n/4)
		}
	}
	// The source vertex: n records in; out: even + broadcast odd (counted
	// once per edge) + round robin.
	if in, out := counters["src"][0].RecordsIn.Load(), counters["src"][0].RecordsOut.Load(); in != n || out != n/2+n/2+n/2 {
		t.Fatalf("src counters in %d out %d", in, out)
	}
	if closed.get("tagger") != 1 {
		t.Fatal("tagger not closed once")
	}
}

// A chain that ends in a sink and also feeds a side output to another
// vertex counts both as records out: the side edge's records and the
// records the sink writes (it used to count only the side output).
func TestRecordsOutOfSinkChainWithSideOutput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := startWorker(t, "A")
	const n = 1000
	g := &graph.Graph{}
	head := vertex("src", 1, srcNode("src"), opNode("tagger"), &spec.Node{Name: "out", Sink: &spec.Sink{}})
	odd := vertex("odd", 1, opNode("odd"))
	g.Vertices = []*graph.Vertex{head, odd}
	connect(g, head, "tagger", "odd", odd, dataflow.Forward)
	got, closed := newCollected(), newCounter()
	coll := func(*dataflow.Context) dataflow.Operator { return &collector{c: got, closed: closed} }
	j := &job{g: g, attempt: 1,
		placements: map[string][]*worker{"src": {a}, "odd": {a}},
		builder: &fakeBuilder{
			sources: map[string]func(*dataflow.Context) dataflow.Source{
				"src": func(*dataflow.Context) dataflow.Source { return &seqSource{n: n, closed: closed} }},
			ops: map[string]func(*dataflow.Context) dataflow.Operator{
				"tagger": func(*dataflow.Context) dataflow.Operator { return tagger{closed} },
				"out":    coll, "odd": coll,
			},
		}}
	results, counters := j.start(ctx)
	for _, r := range waitAll(t, results, 2, 25*time.Second) {
		if r.err != nil {
			t.Fatalf("%s: %v", r.id, r.err)
		}
	}
	if c := got.count("out/0"); c != n/2 {
		t.Fatalf("sink got %d, want %d", c, n/2)
	}
	if out := counters["src"][0].RecordsOut.Load(); out != n {
		t.Fatalf("src vertex records out %d, want %d (%d to the side edge, %d written by the sink)", out, n, n/2, n/2)
	}
}

// watermark combining: a task with two input channels fed by hand.
// After a stop-with-savepoint barrier nothing may change downstream: the
// savepoint holds the state. When the stopped sources then end one by one,
// the first channel's end used to leave the other's watermark as the
// minimum, which fired windows past the savepoint: an at-least-once sink
// wrote them, and the job restored from the savepoint wrote them again
// (1,498 windows twice in TestStopWithSavepointRescale on a loaded machine).
func TestNoWatermarkAfterStopBarrier(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := startWorker(t, "A")
	g := &graph.Graph{}
	up := vertex("up", 2, srcNode("up"))
	op := vertex("op", 1, opNode("op"))
	g.Vertices = []*graph.Vertex{up, op}
	connect(g, up, "up", "", op, dataflow.Rebalance)
	got, closed := newCollected(), newCounter()
	d := Deployment{
		ID:            ID{JobID: "job-1", Attempt: 1, VertexID: "op"},
		Graph:         g,
		Placements:    map[string][]Address{"up": {{WorkerID: "A"}, {WorkerID: "A"}}, "op": {{WorkerID: "A"}}},
		LocalWorkerID: "A",
	}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, d, Env{Exchange: a.x, Builder: &fakeBuilder{ops: map[string]func(*dataflow.Context) dataflow.Operator{
			"op": func(*dataflow.Context) dataflow.Operator { return &collector{c: got, closed: closed} },
		}}}, nil)
	}()
	var in [2]exchange.Sender
	for i := range in {
		var err error
		in[i], err = a.x.DialLocal(ctx, &datapb.ChannelID{JobId: "job-1", Attempt: 1, Edge: 0, FromSubtask: int32(i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(ch int, es ...dataflow.Element) {
		t.Helper()
		for _, e := range es {
			if err := in[ch].Write(ctx, &e); err != nil {
				t.Fatal(err)
			}
		}
		if err := in[ch].Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wmE := func(w int64) dataflow.Element { return dataflow.Element{Kind: dataflow.KindWatermark, Watermark: w} }
	write(0, wmE(10))
	write(1, wmE(30))
	eventually(t, 5*time.Second, func() bool { return fmt.Sprint(got.wms("op/0")) == "[10]" }, "the minimum watermark")
	stop := dataflow.Element{Kind: dataflow.KindBarrier, Barrier: dataflow.Barrier{ID: 4, Timestamp: 99, Savepoint: true, Stop: true}}
	write(0, stop)
	write(1, stop)
	for i := range in {
		write(i, dataflow.Element{Kind: dataflow.KindEndOfStream})
		if err := in[i].Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if wms := got.wms("op/0"); fmt.Sprint(wms) != "[10]" {
		t.Fatalf("watermarks after the stop barrier: %v, want none beyond 10", wms)
	}
}

func TestWatermarkCombiningIdleAndBarriers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := startWorker(t, "A")
	g := &graph.Graph{}
	up := vertex("up", 2, srcNode("up"))
	op := vertex("op", 1, opNode("op"))
	down := vertex("down", 1, opNode("down"))
	g.Vertices = []*graph.Vertex{up, op, down}
	connect(g, up, "up", "", op, dataflow.Rebalance)
	connect(g, op, "op", "", down, dataflow.Forward)
	got, closed := newCollected(), newCounter()
	d := Deployment{
		ID:            ID{JobID: "job-1", Attempt: 3, VertexID: "op"},
		Graph:         g,
		Placements:    map[string][]Address{"up": {{WorkerID: "A"}, {WorkerID: "A"}}, "op": {{WorkerID: "A"}}, "down": {{WorkerID: "A"}}},
		LocalWorkerID: "A",
	}
	// The downstream gate is the test's.
	dg, err := a.x.OpenInputGate("job-1", 3, []exchange.EdgeInputs{{Edge: 1, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer dg.Close()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, d, Env{Exchange: a.x, Builder: &fakeBuilder{ops: map[string]func(*dataflow.Context) dataflow.Operator{
			"op": func(*dataflow.Context) dataflow.Operator { return &collector{c: got, closed: closed} },
		}}}, nil)
	}()
	var in [2]exchange.Sender
	for i := range in {
		in[i], err = a.x.DialLocal(ctx, &datapb.ChannelID{JobId: "job-1", Attempt: 3, Edge: 0, FromSubtask: int32(i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(ch int, es ...dataflow.Element) {
		t.Helper()
		for _, e := range es {
			if err := in[ch].Write(ctx, &e); err != nil {
				t.Fatal(err)
			}
		}
	}
	wmE := func(w int64) dataflow.Element { return dataflow.Element{Kind: dataflow.KindWatermark, Watermark: w} }
	idleE := func(idle bool) dataflow.Element { return dataflow.Element{Kind: dataflow.KindIdle, Idle: idle} }
	waitWMs := func(want ...int64) {
		t.Helper()
		eventually(t, 5*time.Second, func() bool { return fmt.Sprint(got.wms("op/0")) == fmt.Sprint(want) },
			fmt.Sprintf("watermarks %v, have %v", want, got.wms("op/0")))
	}
	// Downstream elements, read in the background.
	var dmu sync.Mutex
	var downEls []dataflow.Element
	downDone := make(chan error, 1)
	go func() {
		for {
			_, batch, err := dg.Next(ctx)
			if err != nil {
				downDone <- err
				return
			}
			dmu.Lock()
			downEls = append(downEls, batch...)
			dmu.Unlock()
		}
	}()
	downHas := func(e dataflow.Element) func() bool {
		return func() bool {
			dmu.Lock()
			defer dmu.Unlock()
			for _, d := range downEls {
				if d.Kind == e.Kind && d.Idle == e.Idle && d.Watermark == e.Watermark && d.Barrier == e.Barrier {
					return true
				}
			}
			return false
		}
	}

	write(0, wmE(10))
	write(1, wmE(5))
	waitWMs(5) // min over both channels
	write(1, idleE(true))
	waitWMs(5, 10) // the idle channel does not hold back
	write(0, idleE(true))
	eventually(t, 5*time.Second, downHas(idleE(true)), "idle downstream once all inputs are idle")
	write(0, idleE(false), wmE(20))
	waitWMs(5, 10, 20)
	eventually(t, 5*time.Second, downHas(idleE(false)), "active again downstream")
	write(1, idleE(false), wmE(15), wmE(30)) // behind: no regression
	write(0, wmE(25))
	waitWMs(5, 10, 20, 25)
	// A barrier goes downstream once it came on every channel; meanwhile
	// (exactly-once alignment) the channel that delivered it is blocked.
	bar := dataflow.Element{Kind: dataflow.KindBarrier, Barrier: dataflow.Barrier{ID: 7, Timestamp: 99, Savepoint: true}}
	rec := dataflow.Element{Kind: dataflow.KindRecord, Record: dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"i": int64(1)})}}
	write(0, bar, rec)
	if err := in[0].Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Three frames on channel 1 after the blocked record was queued: a
	// round-robin gate would have handed it out by then.
	for range 3 {
		write(1, rec)
		if err := in[1].Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, func() bool { return got.count("op/0") == 3 }, "records of the unaligned channel pass")
	if downHas(bar)() || got.count("op/0") != 3 {
		t.Fatal("barrier forwarded or blocked channel read before alignment")
	}
	write(1, bar)
	eventually(t, 5*time.Second, downHas(bar), "barrier forwarded")
	eventually(t, 5*time.Second, func() bool { return got.count("op/0") == 4 }, "blocked channel read after alignment")
	for i := range in {
		write(i, dataflow.Element{Kind: dataflow.KindEndOfStream})
		if err := in[i].Close(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Once channel 0 ended, channel 1 alone sets the watermark.
			waitWMs(5, 10, 20, 25, 30)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitWMs(5, 10, 20, 25, 30, dataflow.MaxWatermark)
	if err := <-downDone; !errors.Is(err, io.EOF) {
		t.Fatalf("downstream: %v", err)
	}
	bars := 0
	for _, e := range downEls {
		if e.Kind == dataflow.KindBarrier {
			bars++
		}
	}
	if bars != 1 {
		t.Fatalf("%d barriers downstream", bars)
	}
	if closed.get("op/0") != 1 {
		t.Fatal("op not closed once")
	}
}

func TestCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := startWorker(t, "A"), startWorker(t, "B")
	g := &graph.Graph{}
	src := vertex("src", 2, srcNode("src"))
	cnt := vertex("count", 2, opNode("count"))
	g.Vertices = []*graph.Vertex{src, cnt}
	connect(g, src, "src", "", cnt, dataflow.Hash)
	got, closed := newCollected(), newCounter()
	j := &job{g: g, attempt: 1, placements: map[string][]*worker{"src": {a, b}, "count": {b, a}},
		builder: &fakeBuilder{
			sources: map[string]func(*dataflow.Context) dataflow.Source{
				"src": func(*dataflow.Context) dataflow.Source { return &seqSource{n: -1, closed: closed} }},
			ops: map[string]func(*dataflow.Context) dataflow.Operator{
				"count": func(*dataflow.Context) dataflow.Operator { return &collector{c: got, closed: closed} }},
		}}
	results, _ := j.start(ctx)
	eventually(t, 10*time.Second, func() bool { return got.total() > 5000 }, "records flow")
	start := time.Now()
	cancel()
	for _, r := range waitAll(t, results, 4, 5*time.Second) {
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("%s: %v, want context.Canceled", r.id, r.err)
		}
	}
	t.Logf("all subtasks returned %s after cancel", time.Since(start))
	for sub := range 2 {
		if c := closed.get(fmt.Sprintf("count/%d", sub)); c != 1 {
			t.Fatalf("count/%d closed %d times", sub, c)
		}
	}
	if closed.get("src") != 2 {
		t.Fatalf("sources closed %d times", closed.get("src"))
	}
}

// blocker blocks in Process until release is closed.
type blocker struct {
	release <-chan struct{}
	entered chan<- struct{}
}

func (blocker) Open(*dataflow.Context) error { return nil }
func (o blocker) Process(*dataflow.Record, dataflow.Output) error {
	select {
	case o.entered <- struct{}{}:
	default:
	}
	<-o.release
	return nil
}
func (blocker) Close(dataflow.Output) error { return nil }

func TestCancelWhileBackpressured(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := startWorker(t, "A"), startWorker(t, "B")
	g := &graph.Graph{}
	src := vertex("src", 2, srcNode("src"))
	blk := vertex("block", 2, opNode("block"))
	g.Vertices = []*graph.Vertex{src, blk}
	connect(g, src, "src", "", blk, dataflow.Forward)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	closed := newCounter()
	j := &job{g: g, attempt: 1, placements: map[string][]*worker{"src": {a, b}, "block": {a, a}},
		builder: &fakeBuilder{
			sources: map[string]func(*dataflow.Context) dataflow.Source{
				"src": func(*dataflow.Context) dataflow.Source { return &seqSource{n: -1, closed: closed} }},
			ops: map[string]func(*dataflow.Context) dataflow.Operator{
				"block": func(*dataflow.Context) dataflow.Operator { return blocker{release: release, entered: entered} }},
		}}
	results, counters := j.start(ctx)
	<-entered
	// Both sources run out of credit (one over gRPC, one in memory): their
	// output stops growing.
	var before [2]int64
	same := 0
	eventually(t, 10*time.Second, func() bool {
		moved := false
		for i, c := range counters["src"] {
			out := c.RecordsOut.Load()
			if out == 0 || out != before[i] {
				moved = true
			}
			before[i] = out
		}
		if moved {
			same = 0
		} else {
			same++
		}
		return same >= 50
	}, "sources stall")
	cancel()
	for _, r := range waitAll(t, results, 2, 5*time.Second) {
		if r.id.VertexID != "src" || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("%s: %v", r.id, r.err)
		}
	}
	for i, c := range counters["src"] {
		if c.BackpressuredNs.Load() <= 0 {
			t.Fatalf("src[%d]: no backpressure counted", i)
		}
	}
	close(release)
	for _, r := range waitAll(t, results, 2, 5*time.Second) {
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("%s: %v", r.id, r.err)
		}
	}
}

func TestOperatorFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := startWorker(t, "A"), startWorker(t, "B")
	g := &graph.Graph{}
	src := vertex("src", 2, srcNode("src"))
	cnt := vertex("count", 1, opNode("count"))
	g.Vertices = []*graph.Vertex{src, cnt}
	connect(g, src, "src", "", cnt, dataflow.Rebalance)
	got, closed := newCollected(), newCounter()
	j := &job{g: g, attempt: 1, placements: map[string][]*worker{"src": {a, b}, "count": {b}},
		builder: &fakeBuilder{
			sources: map[string]func(*dataflow.Context) dataflow.Source{
				"src": func(*dataflow.Context) dataflow.Source { return &seqSource{n: -1, closed: closed} }},
			ops: map[string]func(*dataflow.Context) dataflow.Operator{
				"count": func(*dataflow.Context) dataflow.Operator { return &collector{c: got, closed: closed, failAt: 777} }},
		}}
	results, _ := j.start(ctx)
	r := waitAll(t, results, 1, 10*time.Second)[0]
	var ne *NodeError
	if r.id.VertexID != "count" || !errors.As(r.err, &ne) || ne.Node != "count" || !errContains(r.err, "boom at 777") {
		t.Fatalf("first failure: %s: %v", r.id, r.err)
	}
	t.Logf("failure: %v", r.err)
	if closed.get("count/0") != 1 {
		t.Fatal("failed operator not closed")
	}
	// The upstream subtasks see the broken channel or, like the worker
	// would do, are cancelled.
	cancel()
	for _, r := range waitAll(t, results, 2, 5*time.Second) {
		if r.err == nil {
			t.Fatalf("%s: nil error", r.id)
		}
	}
}

func TestDeploymentErrors(t *testing.T) {
	a := startWorker(t, "A")
	g := &graph.Graph{}
	src := vertex("src", 1, srcNode("src"))
	g.Vertices = []*graph.Vertex{src}
	for name, d := range map[string]Deployment{
		"no graph":       {ID: ID{VertexID: "src"}},
		"no vertex":      {ID: ID{VertexID: "nope"}, Graph: g},
		"bad subtask":    {ID: ID{VertexID: "src", Subtask: 3}, Graph: g},
		"builder refuse": {ID: ID{VertexID: "src"}, Graph: g},
	} {
		err := Run(context.Background(), d, Env{Exchange: a.x, Builder: &fakeBuilder{}}, nil)
		if err == nil {
			t.Errorf("%s: nil error", name)
		}
	}
}

func errContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

type panicker struct{}

func (panicker) Open(*dataflow.Context) error                    { return nil }
func (panicker) Process(*dataflow.Record, dataflow.Output) error { panic("operator bug") }
func (panicker) Close(dataflow.Output) error                     { return nil }

func TestOperatorPanicIsAnError(t *testing.T) {
	a := startWorker(t, "A")
	g := &graph.Graph{}
	v := vertex("src", 1, srcNode("src"), opNode("bad"))
	g.Vertices = []*graph.Vertex{v}
	closed := newCounter()
	d := Deployment{ID: ID{JobID: "j", Attempt: 1, VertexID: "src"}, Graph: g,
		Placements: map[string][]Address{"src": {{WorkerID: "A"}}}, LocalWorkerID: "A"}
	err := Run(context.Background(), d, Env{Exchange: a.x, Builder: &fakeBuilder{
		sources: map[string]func(*dataflow.Context) dataflow.Source{
			"src": func(*dataflow.Context) dataflow.Source { return &seqSource{n: 10, closed: closed} }},
		ops: map[string]func(*dataflow.Context) dataflow.Operator{
			"bad": func(*dataflow.Context) dataflow.Operator { return panicker{} }},
	}}, nil)
	if !errContains(err, "panic: operator bug") {
		t.Fatalf("Run: %v", err)
	}
	if closed.get("src") != 1 {
		t.Fatal("source not closed after the panic")
	}
}
