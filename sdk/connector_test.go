package sdk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

type connConfig struct {
	Limit int `json:"limit"`
}

func (c connConfig) Validate() error {
	if c.Limit < 0 {
		return ConfigError("limit", "must be >= 0, got %d", c.Limit)
	}
	return nil
}

type nopSink struct{}

func (nopSink) Open(*ConnectorContext) error                                 { return nil }
func (nopSink) Write(context.Context, Record) error                          { return nil }
func (nopSink) PreCommit(context.Context, int64) (string, bool, error)       { return "", false, nil }
func (nopSink) Commit(context.Context, string) error                         { return nil }
func (nopSink) Abort(context.Context) error                                  { return nil }
func (nopSource) Open(*ConnectorContext) error                               { return nil }
func (nopSource) Splits(context.Context) ([]string, error)                   { return nil, nil }
func (nopSource) Read(context.Context, []Split, *SourceOutput[Record]) error { return nil }

type nopSource struct{}

// A job naming a connector is checked at submit like a process node: the
// connector exists, is of the node's kind, accepts its config, and a
// transactional sink has checkpoints to commit with. Every error carries
// its spec path.
func TestConnectorSpecErrorsCarryTheSpecPath(t *testing.T) {
	RegisterSink("sdktest.sink", func(connConfig) (TransactionalSink[Record, string], error) { return nopSink{}, nil })
	RegisterSource("sdktest.source", func(connConfig) (Source[Record], error) { return nopSource{}, nil })
	t.Cleanup(func() { registry.Unregister("sdktest.sink"); registry.Unregister("sdktest.source") })
	for _, c := range []struct{ source, sink, checkpoint, want string }{
		{`{connector: sdktest.source}`, `{connector: sdktest.sink}`, "checkpoint: {interval: 1s}\n", ""},
		{`{connector: sdktest.nope}`, `{connector: sdktest.sink}`, "checkpoint: {interval: 1s}\n", `pipeline[0].source.connector: no operator "sdktest.nope" in this weir binary`},
		{`{connector: sdktest.sink}`, `{connector: sdktest.sink}`, "checkpoint: {interval: 1s}\n", `pipeline[0].source.connector: sdktest.sink is a sink connector, not a source connector`},
		{`{connector: sdktest.source, config: {limit: -1}}`, `{connector: sdktest.sink, config: {limt: 1}}`, "checkpoint: {interval: 1s}\n", `pipeline[0].source.config.limit: must be >= 0, got -1; pipeline[1].sink.config.limt: unknown field`},
		{`{connector: sdktest.source}`, `{connector: sdktest.sink}`, "", `pipeline[1].sink.connector: sdktest.sink commits its output with checkpoints: the job needs a checkpoint block`},
		{`{connector: sdktest.source}`, `{connector: sdktest.sink}`, "checkpoint: {interval: 1s, mode: at_least_once}\n", `pipeline[1].sink.connector: sdktest.sink writes exactly once: it needs checkpoint.mode exactly_once (aligned barriers), got at_least_once`},
		{`{connector: sdktest.source, kafka: {brokers: [b], topic: t}}`, `{discard: {}}`, "", `pipeline[0].source: has kafka and connector; a source has exactly one connector`},
		{`{datagen: {}, config: {limit: 1}}`, `{connector: Bad}`, "", `pipeline[0].source.config: only with connector:`},
		{`{datagen: {}}`, `{connector: Bad}`, "", `pipeline[1].sink.connector: "Bad" is not a connector id`},
	} {
		y := "name: j\n" + c.checkpoint + "pipeline:\n  - source: " + c.source + "\n  - sink: " + c.sink + "\n"
		_, err := registry.ParseSpec([]byte(y))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", y, err)
		case c.want != "" && (err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), "\n", "; "), c.want)):
			t.Errorf("%s\nerror %v\nwant %s", y, err, c.want)
		}
	}
}

// memOut is a SourceOutput with a checkpoint lock, as the task runtime's.
type memOut struct {
	mu    sync.Mutex
	recs  []dataflow.Record
	wms   []int64
	idle  []bool
	onRec func(n int)
}

func (m *memOut) Emit(r *dataflow.Record) error {
	m.recs = append(m.recs, *r)
	if m.onRec != nil {
		m.onRec(len(m.recs))
	}
	return nil
}
func (m *memOut) EmitSide(string, *dataflow.Record) error { return nil }
func (m *memOut) EmitWatermark(wm int64) error            { m.wms = append(m.wms, wm); return nil }
func (m *memOut) MarkIdle(idle bool) error                { m.idle = append(m.idle, idle); return nil }
func (m *memOut) CheckpointLock() sync.Locker             { return &m.mu }

type evt struct {
	Split string `weir:"split"`
	N     int64  `weir:"n"`
	TS    int64  `weir:"ts"`
}

// seqSource is a bounded source of splits whose position is the next number.
type seqSource struct {
	splits int
	count  int64
	got    [][]Split // what each Read was given
}

func (c *seqSource) Open(*ConnectorContext) error { return nil }
func (c *seqSource) Splits(context.Context) ([]string, error) {
	var ids []string
	for i := range c.splits {
		ids = append(ids, fmt.Sprintf("s%d", i))
	}
	return ids, nil
}
func (c *seqSource) Read(ctx context.Context, splits []Split, out *SourceOutput[evt]) error {
	c.got = append(c.got, splits)
	for _, sp := range splits {
		n := int64(0)
		if sp.Position != nil {
			n, _ = strconv.ParseInt(string(sp.Position), 10, 64)
		}
		for ; n < c.count; n++ {
			if err := out.Emit(sp.ID, []byte(strconv.FormatInt(n+1, 10)), evt{Split: sp.ID, N: n, TS: n * 10}); err != nil {
				return err
			}
		}
	}
	return nil
}

func runSource(t *testing.T, src *seqSource, states [][]byte, subtask, par int, snapAt int) (*memOut, []byte) {
	t.Helper()
	rt, err := recordTypeOf[evt]()
	if err != nil {
		t.Fatal(err)
	}
	node := &spec.Source{EventTime: &spec.EventTime{Field: "ts"}}
	op, err := newSourceOp[evt]("sdktest.seqSource", src, rt, node, &dataflow.Context{Node: "src", Subtask: subtask, Parallelism: par})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Restore(states); err != nil {
		t.Fatal(err)
	}
	if err := op.Open(nil); err != nil {
		t.Fatal(err)
	}
	out := &memOut{}
	var snap []byte
	// The snapshot is taken inside Emit, as a barrier injected by the
	// task lands: the record being emitted is before it.
	out.onRec = func(n int) {
		if n == snapAt {
			var err error
			if snap, err = op.Snapshot(1); err != nil {
				t.Error(err)
			}
		}
	}
	if err := op.Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	return out, snap
}

// Positions live in the checkpoint: a restore continues each split right
// after the last record before the barrier, also at another parallelism
// (split k goes to subtask k mod n), and the event time of each record is
// the spec's event_time field.
func TestSourcePositionsRestoreAtAnotherParallelism(t *testing.T) {
	src := &seqSource{splits: 3, count: 5}
	out, snap := runSource(t, src, nil, 0, 1, 7) // s0: 0-4, s1: 0-1 before the barrier
	if len(out.recs) != 15 || out.recs[3].Time != 30 {
		t.Fatalf("first run emitted %d records (want 15), the fourth at %d (want 30)", len(out.recs), out.recs[3].Time)
	}
	seen := map[string]int{}
	for i := range 2 { // restored as 2 subtasks
		src2 := &seqSource{splits: 3, count: 5}
		out2, _ := runSource(t, src2, [][]byte{snap}, i, 2, -1)
		for _, r := range out2.recs {
			seen[fmt.Sprint(r.Fields.Get("split"), "/", r.Fields.Get("n"))]++
		}
		for _, sp := range src2.got[0] {
			if n, _ := strconv.Atoi(strings.TrimPrefix(sp.ID, "s")); n%2 != i {
				t.Fatalf("subtask %d of 2 was given split %s", i, sp.ID)
			}
		}
	}
	// Before the barrier: s0/0-4 and s1/0-1. The restore must emit the
	// rest, each once.
	want := []string{"s1/2", "s1/3", "s1/4", "s2/0", "s2/1", "s2/2", "s2/3", "s2/4"}
	if len(seen) != len(want) {
		t.Fatalf("restored runs emitted %v, want %v", seen, want)
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Fatalf("restored runs emitted %v, want %v once each", seen, want)
		}
	}
}

// A Read error fails the source with the connector's name; a split Read
// was not given is refused.
func TestSourceReadErrors(t *testing.T) {
	rt, _ := recordTypeOf[Record]()
	for _, c := range []struct {
		read func(context.Context, []Split, *SourceOutput[Record]) error
		want string
	}{
		{func(context.Context, []Split, *SourceOutput[Record]) error { return errors.New("boom") }, "source sdktest.err: read: boom"},
		{func(_ context.Context, _ []Split, out *SourceOutput[Record]) error {
			return out.Emit("nope", nil, NewRecord(map[string]any{"a": 1}))
		}, `emit for a split this subtask does not read: "nope"`},
		{func(context.Context, []Split, *SourceOutput[Record]) error { panic("oops") }, "panicked in Read: oops"},
	} {
		op, err := newSourceOp[Record]("sdktest.err", funcSource(c.read), rt, nil, &dataflow.Context{Node: "s", Parallelism: 1})
		if err != nil {
			t.Fatal(err)
		}
		err = op.Run(context.Background(), &memOut{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

type funcSource func(context.Context, []Split, *SourceOutput[Record]) error

func (funcSource) Open(*ConnectorContext) error             { return nil }
func (funcSource) Splits(context.Context) ([]string, error) { return []string{"a"}, nil }
func (f funcSource) Read(ctx context.Context, s []Split, o *SourceOutput[Record]) error {
	return f(ctx, s, o)
}

// The state decoders read checkpoint files: they must fail cleanly on
// anything.
func FuzzConnectorStates(f *testing.F) {
	f.Add([]byte(`{"version":1,"splits":[{"id":"a","index":0,"position":"MQ==","max_ts":5}]}`))
	f.Add([]byte(`{"version":1,"subtask":0,"pending":[{"checkpoint":3,"txn":"x"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := decodeSourceState(b); err == nil {
			for _, s := range st.Splits {
				if s.ID == "" || s.Index < 0 {
					t.Fatalf("accepted split %+v", s)
				}
			}
		}
		if st, err := decodeSinkState[map[string]any](b); err == nil && len(b) > 0 {
			if st.Subtask < 0 {
				t.Fatalf("accepted subtask %d", st.Subtask)
			}
		}
	})
}

// A cancelled source returns although its Read ignores the context: the
// task's cancellation is never held up by user code.
func TestSourceCancelDoesNotWaitForRead(t *testing.T) {
	rt, _ := recordTypeOf[Record]()
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	op, err := newSourceOp[Record]("sdktest.stuck", funcSource(func(context.Context, []Split, *SourceOutput[Record]) error {
		close(started)
		<-release
		return nil
	}), rt, nil, &dataflow.Context{Node: "s", Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx, &memOut{}) }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
