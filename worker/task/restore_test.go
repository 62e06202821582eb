package task

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
	"github.com/weir-stream/weir/worker/builder"
)

// The end-to-end restore tests run datagen → key_by → 1m window → a
// collecting sink on two in-process workers, take checkpoint 1 mid-stream,
// kill the job, restore it (also at another parallelism and under another
// job id), and compare the sink's output with an uninterrupted run: what
// the sinks emitted before the barrier plus everything after the restore.

// The sequence profile is in event-time order, so no record is ever late
// and the output does not depend on when watermarks happen to be emitted.
const e2eSpec = `name: e2e
parallelism: %d
max_parallelism: 32
pipeline:
  - name: gen
    source:
      datagen: {profile: sequence, count: %d, rate: %d}
      event_time: {field: ts, max_out_of_orderness: 50ms, watermark_interval: 20ms}
  - name: by-k
    key_by: {expr: "id %% 7", as: k}
  - name: per-100ms
    window:
      tumbling: 100ms
      aggregates:
        count: count()
        ids: sum(id)
  - name: out
    sink:
      discard: {}
`

const e2eEvents = 6000

// results is what the collecting sinks of one run emitted, per subtask,
// and where the barrier of each checkpoint fell.
type results struct {
	mu   sync.Mutex
	out  map[int][]string
	cuts map[int]int // subtask -> results before checkpoint 1's barrier
}

func newResults() *results { return &results{out: map[int][]string{}, cuts: map[int]int{}} }

type resultSink struct {
	r   *results
	sub int
}

func (s *resultSink) Open(*dataflow.Context) error { return nil }
func (s *resultSink) Close(dataflow.Output) error  { return nil }
func (s *resultSink) Process(r *dataflow.Record, _ dataflow.Output) error {
	keys := make([]string, 0, r.Fields.Len())
	for k := range r.Fields.All() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v ", k, r.Fields.Get(k))
	}
	s.r.mu.Lock()
	s.r.out[s.sub] = append(s.r.out[s.sub], b.String())
	s.r.mu.Unlock()
	return nil
}

// Snapshot marks where the barrier fell; the sink keeps no state.
func (s *resultSink) Snapshot(id int64) ([]byte, error) {
	s.r.mu.Lock()
	if id == 1 {
		s.r.cuts[s.sub] = len(s.r.out[s.sub])
	}
	s.r.mu.Unlock()
	return nil, nil
}
func (s *resultSink) Restore([][]byte) error { return nil }

func (r *results) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	for _, o := range r.out {
		all = append(all, o...)
	}
	sort.Strings(all)
	return all
}

func (r *results) beforeCut() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	for sub, o := range r.out {
		all = append(all, o[:r.cuts[sub]]...)
	}
	return all
}

type e2eBuilder struct {
	b *builder.Builder
	r *results
}

func (b e2eBuilder) Source(job *spec.Job, n *spec.Node, ctx *dataflow.Context) (dataflow.Source, error) {
	return b.b.Source(job, n, ctx)
}

func (b e2eBuilder) Operator(job *spec.Job, n *spec.Node, ctx *dataflow.Context) (dataflow.Operator, error) {
	if n.Name == "out" {
		return &resultSink{r: b.r, sub: ctx.Subtask}, nil
	}
	return b.b.Operator(job, n, ctx)
}

type e2eRun struct {
	g        *graph.Graph
	res      *results
	rep      *reports
	controls map[string][]*Control
	counters map[string][]*dataflow.Counters
	done     chan error
	n        int
}

// startE2E runs every subtask of the job spread over the two workers.
func startE2E(t *testing.T, ctx context.Context, ws [2]*worker, jobID string, par, rate int, ckptDir string, restore *RestorePoint) *e2eRun {
	t.Helper()
	job, err := spec.Parse(fmt.Appendf(nil, e2eSpec, par, e2eEvents, rate))
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Build(job)
	if err != nil {
		t.Fatal(err)
	}
	r := &e2eRun{g: g, res: newResults(), rep: &reports{}, controls: map[string][]*Control{},
		counters: map[string][]*dataflow.Counters{}, done: make(chan error, 64)}
	places := map[string][]Address{}
	for vi, v := range g.Vertices {
		for i := range v.Parallelism {
			w := ws[(vi+i)%2]
			places[v.ID] = append(places[v.ID], Address{WorkerID: w.id, DataAddr: w.addr})
		}
	}
	b := e2eBuilder{b: builder.New(), r: r.res}
	for vi, v := range g.Vertices {
		for i := range v.Parallelism {
			w := ws[(vi+i)%2]
			ctl, c := NewControl(), &dataflow.Counters{}
			r.controls[v.ID] = append(r.controls[v.ID], ctl)
			r.counters[v.ID] = append(r.counters[v.ID], c)
			d := Deployment{ID: ID{JobID: jobID, Attempt: 1, VertexID: v.ID, Subtask: i}, Graph: g, Placements: places,
				LocalWorkerID: w.id, CheckpointDir: ckptDir + "/" + jobID, Restore: restore, Control: ctl}
			r.n++
			go func() { r.done <- Run(ctx, d, Env{Builder: b, Exchange: w.x, Reporter: r.rep}, c) }()
		}
	}
	return r
}

func (r *e2eRun) wait(t *testing.T) []error {
	t.Helper()
	var errs []error
	for range r.n {
		select {
		case err := <-r.done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("job did not end")
		}
	}
	return errs
}

// checkpoint triggers checkpoint 1 at the sources, waits for every ack and
// commits the metadata as the coordinator would.
func (r *e2eRun) checkpoint(t *testing.T, ctx context.Context, root, jobID string) {
	t.Helper()
	for _, v := range r.g.Vertices {
		if v.Nodes[0].Source == nil {
			continue
		}
		for _, c := range r.controls[v.ID] {
			c.Post(Command{Kind: CmdTrigger, CheckpointID: 1, Timestamp: time.Now().UnixMilli()})
		}
	}
	eventually(t, 30*time.Second, func() bool {
		r.rep.mu.Lock()
		defer r.rep.mu.Unlock()
		if len(r.rep.declines) > 0 {
			t.Fatalf("declined: %v", r.rep.declines[0])
		}
		return len(r.rep.acks) == r.n
	}, "every subtask acknowledged")
	m := &checkpointpb.Metadata{FormatVersion: checkpoint.FormatVersion, JobId: jobID, CheckpointId: 1, MaxParallelism: int32(r.g.MaxParallelism)}
	for _, a := range r.rep.acks {
		v := r.g.Vertex(a.GetTask().GetVertexId())
		m.Subtasks = append(m.Subtasks, &checkpointpb.SubtaskState{VertexId: v.ID, Subtask: a.GetTask().GetSubtask(),
			Parallelism: int32(v.Parallelism), Operators: a.GetOperators(), Stats: a.GetStats()})
	}
	st, err := checkpoint.OpenStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := checkpoint.WriteMetadata(ctx, st, checkpoint.CheckpointDir(jobID, 1), m); err != nil {
		t.Fatal(err)
	}
}

func (r *e2eRun) sourceRecords() int64 {
	var n int64
	for _, c := range r.counters["gen"] {
		n += c.RecordsIn.Load()
	}
	return n
}

func TestRestoreEndToEnd(t *testing.T) {
	ws := [2]*worker{startWorker(t, "A"), startWorker(t, "B")}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	base := startE2E(t, ctx, ws, "base", 2, 0, "", nil)
	if errs := base.wait(t); len(errs) > 0 {
		t.Fatal(errs)
	}
	want := base.res.all()
	if len(want) < 60*7 {
		t.Fatalf("only %d window results", len(want))
	}

	for _, tc := range []struct{ from, to int }{{2, 2}, {2, 3}, {3, 2}} {
		t.Run(fmt.Sprintf("%d-to-%d", tc.from, tc.to), func(t *testing.T) {
			dir := t.TempDir()
			root, err := checkpoint.FileURI(dir)
			if err != nil {
				t.Fatal(err)
			}
			// Rate-limited, so the checkpoint falls mid-stream.
			runCtx, kill := context.WithCancel(ctx)
			first := startE2E(t, runCtx, ws, "job-1", tc.from, 10000, root, nil)
			eventually(t, 30*time.Second, func() bool { return first.sourceRecords() > e2eEvents/4 }, "a quarter of the events read")
			first.checkpoint(t, ctx, root, "job-1")
			if n := first.sourceRecords(); n >= e2eEvents {
				t.Logf("note: the sources had read everything (%d) by the time every ack was in", n)
			}
			kill()
			first.wait(t)
			if _, err := os.Stat(filepath.Join(dir, "job-1", "chk-1", checkpoint.MetadataFile)); err != nil {
				t.Fatal(err)
			}

			// Restore under another job id, as from a savepoint.
			second := startE2E(t, ctx, ws, "job-2", tc.to, 0, root,
				&RestorePoint{CheckpointID: 1, MetadataURI: root + "/job-1/chk-1/" + checkpoint.MetadataFile})
			if errs := second.wait(t); len(errs) > 0 {
				t.Fatal(errs)
			}
			// The restored sources resume: they do not read everything again.
			if n := second.sourceRecords(); n <= 0 || n >= e2eEvents {
				t.Fatalf("restored sources read %d of %d events", n, e2eEvents)
			}
			t.Logf("%d of %d results before the checkpoint; %d events read after the restore", len(first.res.beforeCut()), len(want), second.sourceRecords())
			got := append(first.res.beforeCut(), second.res.all()...)
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Fatalf("restored output differs: %d results (%d before the checkpoint), want %d\n%s",
					len(got), len(first.res.beforeCut()), len(want), diff(got, want))
			}
		})
	}
}

func diff(got, want []string) string {
	count := map[string]int{}
	for _, s := range got {
		count[s]++
	}
	for _, s := range want {
		count[s]--
	}
	var b strings.Builder
	n := 0
	for s, c := range count {
		if c != 0 && n < 10 {
			fmt.Fprintf(&b, "%+d %s\n", c, s)
			n++
		}
	}
	return b.String()
}

func TestRestoreCorruptStateFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	root, err := checkpoint.FileURI(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.OpenStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cdir := checkpoint.CheckpointDir("old-job", 9)
	name := checkpoint.StateFileName("src", 0, "src")
	h, err := checkpoint.WriteState(ctx, st, cdir, name, []byte{0, 0, 0, 0, 0, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	m := &checkpointpb.Metadata{FormatVersion: checkpoint.FormatVersion, JobId: "old-job", CheckpointId: 9, MaxParallelism: 128,
		Subtasks: []*checkpointpb.SubtaskState{{VertexId: "src", Parallelism: 1, Operators: []*checkpointpb.OperatorState{{Node: "src", Handle: h}}}}}
	if err := checkpoint.WriteMetadata(ctx, st, cdir, m); err != nil {
		t.Fatal(err)
	}
	restore := &RestorePoint{CheckpointID: 9, MetadataURI: root + "/" + cdir + "/" + checkpoint.MetadataFile}

	start := func() (*posSource, context.CancelFunc, <-chan error) {
		w := startWorker(t, "A")
		g := &graph.Graph{}
		up := vertex("src", 1, srcNode("src"))
		g.Vertices = []*graph.Vertex{up}
		src := &posSource{n: 3}
		d := Deployment{ID: ID{JobID: "new-job", Attempt: 1, VertexID: "src"}, Graph: g,
			Placements: map[string][]Address{"src": {{WorkerID: "A"}}}, LocalWorkerID: "A",
			CheckpointDir: root + "/new-job", Restore: restore}
		b := &fakeBuilder{sources: map[string]func(*dataflow.Context) dataflow.Source{"src": func(*dataflow.Context) dataflow.Source { return src }}}
		runCtx, stop := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- Run(runCtx, d, Env{Builder: b, Exchange: w.x}, nil) }()
		return src, stop, errc
	}
	run := func() error {
		_, stop, errc := start()
		defer stop()
		return <-errc
	}
	// Intact: restored (position 1) before the first record.
	src, stop, errc := start()
	eventually(t, 10*time.Second, func() bool { return src.next.Load() == 3 }, "records 1 and 2 emitted")
	stop()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
	if len(src.restored) != 1 || decodeCount(t, src.restored[0]) != 1 {
		t.Fatalf("restored %q", src.restored)
	}

	// Corrupt: one byte flipped.
	p := filepath.Join(dir, "old-job", "chk-9", name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = run()
	if !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), name) {
		t.Fatalf("want ErrCorrupt naming %s, got %v", name, err)
	}
	// Missing: also reported as corrupt.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	err = run()
	if !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), name) {
		t.Fatalf("want ErrCorrupt naming %s for a missing file, got %v", name, err)
	}
}
