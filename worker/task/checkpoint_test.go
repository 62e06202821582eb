package task

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
	"github.com/weir-stream/weir/dataflow/spec"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
	datapb "github.com/weir-stream/weir/proto/data/v1"
	"github.com/weir-stream/weir/worker/exchange"
)

// --- fakes ---

// memStore is an in-memory StateStore. While block is non-nil, WriteState
// waits for it to be closed; fail makes WriteState fail.
type memStore struct {
	mu    sync.Mutex
	files map[string][]byte
	block chan struct{}
	fail  error
}

func newMemStore() *memStore { return &memStore{files: map[string][]byte{}} }

func (s *memStore) open(string) (StateStore, error) { return s, nil }

func (s *memStore) WriteState(ctx context.Context, dir, name string, data []byte) (*checkpointpb.StateHandle, error) {
	s.mu.Lock()
	block, fail := s.block, s.fail
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	s.mu.Lock()
	s.files[dir+"/"+name] = append([]byte(nil), data...)
	s.mu.Unlock()
	return &checkpointpb.StateHandle{Path: name, Size: int64(len(data)), Crc32C: checkpoint.CRC32C(data)}, nil
}

func (s *memStore) ReadState(_ context.Context, dir string, h *checkpointpb.StateHandle) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[dir+"/"+h.GetPath()]
	if !ok {
		return nil, checkpoint.ErrNotFound
	}
	return b, nil
}

func (s *memStore) ReadMetadata(context.Context, string) (*checkpointpb.Metadata, error) {
	return nil, checkpoint.ErrNotFound
}

func (s *memStore) Close() error { return nil }

func (s *memStore) file(dir, name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[dir+"/"+name]
}

// reports collects acks and declines.
type reports struct {
	mu       sync.Mutex
	acks     []*controlpb.CheckpointAck
	declines []*controlpb.CheckpointDecline
}

func (r *reports) Ack(a *controlpb.CheckpointAck) {
	r.mu.Lock()
	r.acks = append(r.acks, a)
	r.mu.Unlock()
}

func (r *reports) Decline(d *controlpb.CheckpointDecline) {
	r.mu.Lock()
	r.declines = append(r.declines, d)
	r.mu.Unlock()
}

func (r *reports) ack(id int64) *controlpb.CheckpointAck {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.acks {
		if a.GetCheckpointId() == id {
			return a
		}
	}
	return nil
}

func (r *reports) decline(id int64) *controlpb.CheckpointDecline {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.declines {
		if d.GetCheckpointId() == id {
			return d
		}
	}
	return nil
}

// posSource emits records i = 0, 1, ... (field "i"); its position is the
// next i, advanced under the checkpoint lock like datagen's. After n
// records (n >= 0) it idles until cancelled, or with end its input ends.
type posSource struct {
	n    int64
	end  bool
	hold chan struct{} // with end: Run returns once it is closed
	next atomic.Int64
	// restored is what Restore got.
	restored [][]byte
}

func (s *posSource) Open(*dataflow.Context) error { return nil }
func (s *posSource) Close() error                 { return nil }

func (s *posSource) Run(ctx context.Context, out dataflow.SourceOutput) error {
	lk := out.(interface{ CheckpointLock() sync.Locker }).CheckpointLock()
	for i := s.next.Load(); s.n < 0 || i < s.n; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"i": i})}
		lk.Lock()
		s.next.Store(i + 1)
		err := out.Emit(&r)
		lk.Unlock()
		if err != nil {
			return err
		}
	}
	if s.end {
		if s.hold != nil {
			select {
			case <-s.hold:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *posSource) Snapshot(int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(s.next.Load())), nil
}

func (s *posSource) Restore(states [][]byte) error {
	s.restored = states
	if len(states) == 1 {
		s.next.Store(int64(binary.BigEndian.Uint64(states[0])))
	}
	return nil
}

// countOp counts records; its state is the count. It records checkpoint
// notifications and can be slowed down per record.
type countOp struct {
	n         atomic.Int64
	mu        sync.Mutex
	notified  []int64
	notifyErr error
}

func (o *countOp) Open(*dataflow.Context) error { return nil }
func (o *countOp) Process(r *dataflow.Record, out dataflow.Output) error {
	o.n.Add(1)
	return out.Emit(r)
}
func (o *countOp) Close(dataflow.Output) error { return nil }
func (o *countOp) Snapshot(int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(o.n.Load())), nil
}
func (o *countOp) Restore(states [][]byte) error {
	var n int64
	for _, s := range states {
		n += int64(binary.BigEndian.Uint64(s))
	}
	o.n.Store(n)
	return nil
}
func (o *countOp) NotifyCheckpointComplete(_ context.Context, id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.notified = append(o.notified, id)
	return o.notifyErr
}
func (o *countOp) notifications() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int64(nil), o.notified...)
}

func decodeCount(t *testing.T, b []byte) int64 {
	t.Helper()
	if len(b) != 8 {
		t.Fatalf("state of %d bytes", len(b))
	}
	return int64(binary.BigEndian.Uint64(b))
}

// downstream reads a test-owned gate in the background.
type downstream struct {
	mu  sync.Mutex
	els []dataflow.Element
	err chan error
}

func readGate(ctx context.Context, g *exchange.InputGate) *downstream {
	d := &downstream{err: make(chan error, 1)}
	go func() {
		for {
			_, batch, err := g.Next(ctx)
			if err != nil {
				d.err <- err
				return
			}
			d.mu.Lock()
			d.els = append(d.els, batch...)
			d.mu.Unlock()
		}
	}()
	return d
}

// upTo returns the records before the first barrier, and whether it came.
func (d *downstream) upTo() ([]int64, dataflow.Barrier, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var recs []int64
	for _, e := range d.els {
		switch e.Kind {
		case dataflow.KindRecord:
			recs = append(recs, e.Record.Fields.Get("i").(int64))
		case dataflow.KindBarrier:
			return recs, e.Barrier, true
		}
	}
	return recs, dataflow.Barrier{}, false
}

func (d *downstream) kinds() []dataflow.Kind {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ks []dataflow.Kind
	for _, e := range d.els {
		if e.Kind != dataflow.KindRecord {
			ks = append(ks, e.Kind)
		}
	}
	return ks
}

// --- sources ---

// runSourceTask runs a one-node source vertex feeding a gate the test
// reads.
func runSourceTask(t *testing.T, ctx context.Context, src *posSource, ops map[string]func(*dataflow.Context) dataflow.Operator, chain ...*spec.Node) (*Control, *reports, *memStore, *downstream, <-chan error) {
	t.Helper()
	w := startWorker(t, "A")
	g := &graph.Graph{Job: &spec.Job{Name: "j", Checkpoint: &spec.Checkpoint{}}}
	up := vertex("src", 1, append([]*spec.Node{srcNode("src")}, chain...)...)
	down := vertex("down", 1, opNode("down"))
	g.Vertices = []*graph.Vertex{up, down}
	last := up.Nodes[len(up.Nodes)-1].Name
	connect(g, up, last, "", down, dataflow.Forward)
	dg, err := w.x.OpenInputGate("job-1", 1, []exchange.EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dg.Close)
	ctl, rep, st := NewControl(), &reports{}, newMemStore()
	d := Deployment{
		ID: ID{JobID: "job-1", Attempt: 1, VertexID: "src"}, Graph: g,
		Placements:    map[string][]Address{"src": {{WorkerID: "A"}}, "down": {{WorkerID: "A"}}},
		LocalWorkerID: "A", CheckpointDir: "mem://root/job-1", Control: ctl,
	}
	b := &fakeBuilder{sources: map[string]func(*dataflow.Context) dataflow.Source{
		"src": func(*dataflow.Context) dataflow.Source { return src },
	}, ops: ops}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, d, Env{Exchange: w.x, Builder: b, Reporter: rep, OpenStore: st.open}, nil)
	}()
	return ctl, rep, st, readGate(ctx, dg), done
}

func TestSourceBarrierWhileBusy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src := &posSource{n: -1}
	op := &countOp{}
	ctl, rep, st, down, done := runSourceTask(t, ctx, src,
		map[string]func(*dataflow.Context) dataflow.Operator{"op": func(*dataflow.Context) dataflow.Operator { return op }}, opNode("op"))
	eventually(t, 10*time.Second, func() bool { return src.next.Load() > 1000 }, "source running")
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 1, Timestamp: 42})
	eventually(t, 10*time.Second, func() bool { return rep.ack(1) != nil }, "ack")
	// The ack and the barrier travel separately: the barrier may reach the
	// downstream reader after the ack reached the coordinator.
	var (
		recs []int64
		b    dataflow.Barrier
	)
	eventually(t, 10*time.Second, func() bool {
		var ok bool
		recs, b, ok = down.upTo()
		return ok
	}, "the barrier downstream")
	if b.ID != 1 || b.Timestamp != 42 {
		t.Fatalf("barrier %+v", b)
	}
	for i, r := range recs {
		if r != int64(i) {
			t.Fatalf("record %d before the barrier is %d", i, r)
		}
	}
	ack := rep.ack(1)
	if len(ack.GetOperators()) != 2 || ack.GetOperators()[0].GetNode() != "src" || ack.GetOperators()[1].GetNode() != "op" {
		t.Fatalf("ack operators %v", ack.GetOperators())
	}
	dir := checkpoint.CheckpointDir("job-1", 1)
	pos := decodeCount(t, st.file(dir, checkpoint.StateFileName("src", 0, "src")))
	cnt := decodeCount(t, st.file(dir, checkpoint.StateFileName("src", 0, "op")))
	if pos != int64(len(recs)) || cnt != int64(len(recs)) {
		t.Fatalf("source position %d, chained count %d, %d records before the barrier", pos, cnt, len(recs))
	}
	if ack.GetStats().GetBytes() != 16 {
		t.Fatalf("stats %v", ack.GetStats())
	}
	// Notification reaches the chained listener (under the source lock).
	ctl.Post(Command{Kind: CmdComplete, CheckpointID: 1})
	eventually(t, 5*time.Second, func() bool { return fmt.Sprint(op.notifications()) == "[1]" }, "notified")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
}

// A trigger whose id is not above the last barrier the source injected (a
// coordinator that took the running job over reused an id it never
// recorded) is declined, so the coordinator aborts it and goes on.
func TestSourceDeclinesAReusedCheckpointID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src := &posSource{n: -1}
	ctl, rep, _, _, done := runSourceTask(t, ctx, src, nil)
	eventually(t, 10*time.Second, func() bool { return src.next.Load() > 100 }, "source running")
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 5})
	eventually(t, 10*time.Second, func() bool { return rep.ack(5) != nil }, "ack of 5")
	for _, id := range []int64{5, 4} {
		ctl.Post(Command{Kind: CmdTrigger, CheckpointID: id})
		eventually(t, 10*time.Second, func() bool { return rep.decline(id) != nil }, "decline of a reused id")
	}
	if d := rep.decline(4); !strings.Contains(d.GetReason(), "not above 5") {
		t.Fatalf("reason %q", d.GetReason())
	}
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 6})
	eventually(t, 10*time.Second, func() bool { return rep.ack(6) != nil }, "ack of 6")
	cancel()
	<-done
}

func TestSourceBarrierWhileIdleAndStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src := &posSource{n: 5}
	ctl, rep, st, down, done := runSourceTask(t, ctx, src, nil)
	eventually(t, 10*time.Second, func() bool { r, _, _ := down.upTo(); return len(r) == 5 }, "5 records")
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 3})
	eventually(t, 10*time.Second, func() bool { return rep.ack(3) != nil }, "ack while idle")
	eventually(t, 10*time.Second, func() bool { _, _, ok := down.upTo(); return ok }, "the barrier downstream")
	if recs, b, ok := down.upTo(); !ok || b.ID != 3 || len(recs) != 5 {
		t.Fatalf("%d records before barrier %+v", len(recs), b)
	}
	if pos := decodeCount(t, st.file(checkpoint.CheckpointDir("job-1", 3), checkpoint.StateFileName("src", 0, "src"))); pos != 5 {
		t.Fatalf("position %d", pos)
	}
	// Stop with savepoint: the source stops emitting after the barrier and
	// waits for the savepoint. Aborted, it resumes.
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 4, Savepoint: true, Stop: true})
	eventually(t, 10*time.Second, func() bool { return rep.ack(4) != nil }, "savepoint ack")
	if st.file(checkpoint.SavepointDir("job-1", 4), checkpoint.StateFileName("src", 0, "src")) == nil {
		t.Fatal("savepoint state not under savepoints/")
	}
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 5})
	eventually(t, 10*time.Second, func() bool { return rep.decline(5) != nil }, "trigger declined while stopping")
	ctl.Post(Command{Kind: CmdAbort, CheckpointID: 4})
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 6})
	eventually(t, 10*time.Second, func() bool { return rep.ack(6) != nil }, "checkpoint after the aborted stop")
	// Completed, the task finishes: barriers, then end of stream without a
	// final watermark.
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 7, Savepoint: true, Stop: true})
	eventually(t, 10*time.Second, func() bool { return rep.ack(7) != nil }, "savepoint ack")
	ctl.Post(Command{Kind: CmdComplete, CheckpointID: 7})
	if err := <-done; err != nil {
		t.Fatalf("stopped task: %v", err)
	}
	want := fmt.Sprint([]dataflow.Kind{dataflow.KindBarrier, dataflow.KindBarrier, dataflow.KindBarrier, dataflow.KindBarrier, dataflow.KindEndOfStream})
	eventually(t, 5*time.Second, func() bool { return fmt.Sprint(down.kinds()) == want }, "barriers 3, 4, 6, 7 and end of stream")
	// The mailbox of an ended task takes nothing (the worker declines).
	if ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 5}) {
		t.Fatal("a closed mailbox took a command")
	}
}

// At the end of its input a source of a job with periodic checkpoints
// emits the final watermark, then takes part in checkpoints with barriers
// marked end of input, and ends its stream only once one completes as the
// job's final checkpoint: a completion that is not final, or a trigger,
// does not end it.
func TestSourceWaitsForFinalCheckpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src := &posSource{n: 3, end: true}
	op := &countOp{}
	ctl, rep, _, down, done := runSourceTask(t, ctx, src,
		map[string]func(*dataflow.Context) dataflow.Operator{"op": func(*dataflow.Context) dataflow.Operator { return op }}, opNode("op"))
	eventually(t, 10*time.Second, func() bool {
		return fmt.Sprint(down.kinds()) == fmt.Sprint([]dataflow.Kind{dataflow.KindWatermark})
	}, "the final watermark")
	for _, id := range []int64{1, 2} {
		ctl.Post(Command{Kind: CmdTrigger, CheckpointID: id})
		eventually(t, 10*time.Second, func() bool { return rep.ack(id) != nil }, "ack at the end of input")
		if !rep.ack(id).GetEndOfInput() {
			t.Fatalf("ack %d not marked end of input", id)
		}
		ctl.Post(Command{Kind: CmdComplete, CheckpointID: id, Final: id == 2})
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the source did not end after the final checkpoint")
	}
	want := []dataflow.Kind{dataflow.KindWatermark, dataflow.KindBarrier, dataflow.KindBarrier, dataflow.KindEndOfStream}
	eventually(t, 5*time.Second, func() bool { return fmt.Sprint(down.kinds()) == fmt.Sprint(want) }, "watermark, barriers, end of stream")
	down.mu.Lock()
	for _, e := range down.els {
		if e.Kind == dataflow.KindBarrier && !e.Barrier.EndOfInput {
			t.Errorf("barrier %d not marked end of input", e.Barrier.ID)
		}
	}
	down.mu.Unlock()
	if got := fmt.Sprint(op.notifications()); got != "[1 2]" {
		t.Fatalf("chained operator notified of %s, want [1 2]", got)
	}
}

// --- alignment ---

type gateTask struct {
	t    *testing.T
	ctx  context.Context
	in   [2]exchange.Sender
	op   *countOp
	ctl  *Control
	rep  *reports
	st   *memStore
	done chan error
	down *downstream
}

// runGateTask runs vertex "op" (countOp) with two input channels the test
// writes, in the given checkpoint mode.
func runGateTask(t *testing.T, ctx context.Context, mode string, env func(*Env)) *gateTask {
	t.Helper()
	w := startWorker(t, "A")
	g := &graph.Graph{Job: &spec.Job{Checkpoint: &spec.Checkpoint{Mode: mode}}}
	up := vertex("up", 2, srcNode("up"))
	op := vertex("op", 1, opNode("op"))
	down := vertex("down", 1, opNode("down"))
	g.Vertices = []*graph.Vertex{up, op, down}
	connect(g, up, "up", "", op, dataflow.Rebalance)
	connect(g, op, "op", "", down, dataflow.Forward)
	dg, err := w.x.OpenInputGate("job-1", 1, []exchange.EdgeInputs{{Edge: 1, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dg.Close)
	gt := &gateTask{t: t, ctx: ctx, op: &countOp{}, ctl: NewControl(), rep: &reports{}, st: newMemStore(), done: make(chan error, 1)}
	d := Deployment{
		ID: ID{JobID: "job-1", Attempt: 1, VertexID: "op"}, Graph: g,
		Placements:    map[string][]Address{"up": {{WorkerID: "A"}, {WorkerID: "A"}}, "op": {{WorkerID: "A"}}, "down": {{WorkerID: "A"}}},
		LocalWorkerID: "A", CheckpointDir: "mem://root/job-1", Control: gt.ctl,
	}
	e := Env{Exchange: w.x, Reporter: gt.rep, OpenStore: gt.st.open, Builder: &fakeBuilder{ops: map[string]func(*dataflow.Context) dataflow.Operator{
		"op": func(*dataflow.Context) dataflow.Operator { return gt.op },
	}}}
	if env != nil {
		env(&e)
	}
	go func() { gt.done <- Run(ctx, d, e, nil) }()
	for i := range gt.in {
		gt.in[i], err = w.x.DialLocal(ctx, &datapb.ChannelID{JobId: "job-1", Attempt: 1, Edge: 0, FromSubtask: int32(i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	gt.down = readGate(ctx, dg)
	return gt
}

func (g *gateTask) write(ch int, es ...dataflow.Element) {
	g.t.Helper()
	for _, e := range es {
		if err := g.in[ch].Write(g.ctx, &e); err != nil {
			g.t.Fatal(err)
		}
	}
	if err := g.in[ch].Flush(g.ctx); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gateTask) waitCount(n int64) {
	g.t.Helper()
	eventually(g.t, 10*time.Second, func() bool { return g.op.n.Load() == n }, fmt.Sprintf("%d records processed (have %d)", n, g.op.n.Load()))
}

func (g *gateTask) end() {
	g.t.Helper()
	for i := range g.in {
		g.write(i, dataflow.Element{Kind: dataflow.KindEndOfStream})
		if err := g.in[i].Close(g.ctx); err != nil {
			g.t.Fatal(err)
		}
	}
	if err := <-g.done; err != nil {
		g.t.Fatal(err)
	}
}

func (g *gateTask) state(id int64) int64 {
	g.t.Helper()
	return decodeCount(g.t, g.st.file(checkpoint.CheckpointDir("job-1", id), checkpoint.StateFileName("op", 0, "op")))
}

func recE(i int64) dataflow.Element {
	return dataflow.Element{Kind: dataflow.KindRecord, Record: dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"i": i})}}
}

func barE(id int64) dataflow.Element {
	return dataflow.Element{Kind: dataflow.KindBarrier, Barrier: dataflow.Barrier{ID: id}}
}

func TestAlignmentModes(t *testing.T) {
	for _, mode := range []string{spec.ModeExactlyOnce, spec.ModeAtLeastOnce} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			g := runGateTask(t, ctx, mode, nil)
			g.write(0, recE(1), recE(2))
			g.write(1, recE(3))
			g.waitCount(3)
			// Barrier 1 on channel 0, then two records behind it.
			g.write(0, barE(1), recE(4), recE(5))
			g.write(1, recE(6))
			want := int64(4) // exactly-once: channel 0 is blocked
			if mode == spec.ModeAtLeastOnce {
				want = 6 // nothing blocks: the records overtake the barrier
			}
			g.waitCount(want)
			g.write(1, recE(7), recE(8), recE(9)) // more frames: channel 0 stays blocked
			g.waitCount(want + 3)
			if g.rep.ack(1) != nil {
				t.Fatal("acknowledged before aligned")
			}
			g.write(1, barE(1))
			eventually(t, 10*time.Second, func() bool { return g.rep.ack(1) != nil }, "ack")
			if got := g.state(1); got != want+3 {
				t.Fatalf("snapshot counted %d records, want %d", got, want+3)
			}
			g.waitCount(9)
			if a := g.rep.ack(1); a.GetStats().GetAlignmentMs() < 0 || len(a.GetOperators()) != 1 {
				t.Fatalf("ack %v", a)
			}
			g.end()
		})
	}
}

func TestAlignmentAbortAndSubsume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := runGateTask(t, ctx, spec.ModeExactlyOnce, nil)
	// AbortCheckpoint while aligning unblocks the channel.
	g.write(0, barE(1), recE(1))
	g.write(1, recE(2))
	g.waitCount(1)
	g.ctl.Post(Command{Kind: CmdAbort, CheckpointID: 1})
	g.waitCount(2)
	g.write(1, barE(1)) // stale: ignored
	// A higher barrier abandons the one being aligned.
	g.write(0, barE(2), recE(3))
	g.write(1, recE(4))
	g.waitCount(3)
	g.write(1, barE(3)) // 2 was aborted upstream; 3 starts
	g.waitCount(4)
	g.write(0, barE(3))
	eventually(t, 10*time.Second, func() bool { return g.rep.ack(3) != nil }, "ack 3")
	if g.rep.ack(1) != nil || g.rep.ack(2) != nil {
		t.Fatal("aborted checkpoints acknowledged")
	}
	if got := g.state(3); got != 4 {
		t.Fatalf("checkpoint 3 counted %d", got)
	}
	// End of stream counts as the barrier.
	g.write(0, barE(4))
	g.write(1, dataflow.Element{Kind: dataflow.KindEndOfStream})
	if err := g.in[1].Close(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return g.rep.ack(4) != nil }, "ack 4 with an ended channel")
	g.write(0, dataflow.Element{Kind: dataflow.KindEndOfStream})
	if err := g.in[0].Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-g.done; err != nil {
		t.Fatal(err)
	}
}

func TestUploadIsAsyncBoundedAndDeclines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := runGateTask(t, ctx, spec.ModeExactlyOnce, nil)
	release := make(chan struct{})
	g.st.mu.Lock()
	g.st.block = release
	g.st.mu.Unlock()
	for id := int64(1); id <= 3; id++ {
		g.write(0, barE(id))
		g.write(1, barE(id))
		// Records keep flowing while the uploads hang.
		g.write(0, recE(id))
		g.waitCount(id)
	}
	eventually(t, 10*time.Second, func() bool { return g.rep.decline(3) != nil }, "third upload declined")
	if !strings.Contains(g.rep.decline(3).GetReason(), "in flight") {
		t.Fatalf("decline %v", g.rep.decline(3))
	}
	if g.rep.ack(1) != nil {
		t.Fatal("ack before the upload finished")
	}
	close(release)
	eventually(t, 10*time.Second, func() bool { return g.rep.ack(1) != nil && g.rep.ack(2) != nil }, "acks after the uploads")
	// A failing upload declines.
	g.st.mu.Lock()
	g.st.block, g.st.fail = nil, errors.New("disk on fire")
	g.st.mu.Unlock()
	g.write(0, barE(4))
	g.write(1, barE(4))
	eventually(t, 10*time.Second, func() bool { return g.rep.decline(4) != nil }, "decline")
	if r := g.rep.decline(4).GetReason(); !strings.Contains(r, "disk on fire") || !strings.Contains(r, "op") {
		t.Fatalf("reason %q", r)
	}
	if g.rep.decline(4).GetTask().GetVertexId() != "op" {
		t.Fatal("decline without the task")
	}
	// Notifications reach the listener on the task goroutine; an error
	// from it fails the task.
	g.ctl.Post(Command{Kind: CmdComplete, CheckpointID: 2})
	eventually(t, 10*time.Second, func() bool { return fmt.Sprint(g.op.notifications()) == "[2]" }, "notified")
	g.op.mu.Lock()
	g.op.notifyErr = errors.New("commit failed")
	g.op.mu.Unlock()
	g.ctl.Post(Command{Kind: CmdComplete, CheckpointID: 3})
	err := <-g.done
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node != "op" || !strings.Contains(err.Error(), "commit failed") {
		t.Fatalf("want the listener's error, got %v", err)
	}
}

func TestCancelAbandonsUploads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	g := runGateTask(t, runCtx, spec.ModeExactlyOnce, nil)
	g.st.mu.Lock()
	g.st.block = make(chan struct{}) // never released
	g.st.mu.Unlock()
	g.write(0, barE(1))
	g.write(1, barE(1), recE(1))
	g.waitCount(1)
	stop()
	if err := <-g.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
	if g.rep.ack(1) != nil || g.rep.decline(1) != nil {
		t.Fatal("a cancelled task reported its abandoned upload")
	}
}

func TestStopWithSavepointWhileBusy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src := &posSource{n: -1}
	ctl, rep, st, down, done := runSourceTask(t, ctx, src, nil)
	eventually(t, 10*time.Second, func() bool { return src.next.Load() > 1000 }, "source running")
	ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 1, Savepoint: true, Stop: true})
	eventually(t, 10*time.Second, func() bool { return rep.ack(1) != nil }, "ack")
	ctl.Post(Command{Kind: CmdComplete, CheckpointID: 1})
	if err := <-done; err != nil {
		t.Fatalf("stopped task: %v", err)
	}
	eventually(t, 5*time.Second, func() bool { k := down.kinds(); return len(k) > 0 && k[len(k)-1] == dataflow.KindEndOfStream }, "end of stream")
	recs, _, _ := down.upTo()
	pos := decodeCount(t, st.file(checkpoint.SavepointDir("job-1", 1), checkpoint.StateFileName("src", 0, "src")))
	down.mu.Lock()
	total := 0
	for _, e := range down.els {
		if e.Kind == dataflow.KindRecord {
			total++
		}
	}
	down.mu.Unlock()
	if pos != int64(len(recs)) || total != len(recs) {
		t.Fatalf("savepoint position %d, %d records before the barrier, %d in all", pos, len(recs), total)
	}
}

// An aligned barrier is past the end of input only if every channel's is;
// a channel that ended delivers none and does not count against it.
func TestAlignedBarrierEndOfInput(t *testing.T) {
	nop := func(int) {}
	for _, tc := range []struct {
		eoi   []bool // per channel; nil entry: the channel ended
		ended []bool
		want  bool
	}{
		{[]bool{true, true, true}, []bool{false, false, false}, true},
		{[]bool{true, false, true}, []bool{false, false, false}, false},
		{[]bool{false, true, true}, []bool{false, false, false}, false},
		{[]bool{true, false, true}, []bool{false, true, false}, true},
	} {
		a := newAligner(len(tc.eoi), true, nop, nop)
		ended := func(ch int) bool { return tc.ended[ch] }
		aligned := false
		for ch, e := range tc.eoi {
			if tc.ended[ch] {
				continue
			}
			aligned = a.barrier(ch, dataflow.Barrier{ID: 1, EndOfInput: e}, ended)
		}
		if !aligned || a.cur.EndOfInput != tc.want {
			t.Errorf("%+v: aligned %v, end of input %v; want %v", tc, aligned, a.cur.EndOfInput, tc.want)
		}
	}
}

// A barrier older than the one being aligned (its checkpoint was
// abandoned for the newer one) does not count for the newer one's channel.
func TestAlignerIgnoresOlderBarrier(t *testing.T) {
	nop := func(int) {}
	a := newAligner(2, true, nop, nop)
	never := func(int) bool { return false }
	if a.barrier(0, dataflow.Barrier{ID: 2}, never) {
		t.Fatal("aligned after one of two channels")
	}
	if a.barrier(1, dataflow.Barrier{ID: 1}, never) {
		t.Fatal("an older barrier on the other channel aligned the newer checkpoint")
	}
	if !a.barrier(1, dataflow.Barrier{ID: 2}, never) || a.cur.ID != 2 {
		t.Fatalf("not aligned on barrier 2 of both channels: %+v", a.cur)
	}
}

// idleEndSource marks itself idle, then its input ends.
type idleEndSource struct{}

func (idleEndSource) Open(*dataflow.Context) error { return nil }
func (idleEndSource) Close() error                 { return nil }
func (idleEndSource) Run(_ context.Context, out dataflow.SourceOutput) error {
	return out.MarkIdle(true)
}

// A source that was idle when its input ended marks itself active before
// its final watermark, so that the watermark fires the windows downstream
// before the final checkpoint, not after it at end of stream.
func TestIdleSourceActiveBeforeFinalWatermark(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := startWorker(t, "A")
	g := &graph.Graph{Job: &spec.Job{Name: "j", Checkpoint: &spec.Checkpoint{}}}
	up := vertex("src", 1, srcNode("src"))
	down := vertex("down", 1, opNode("down"))
	g.Vertices = []*graph.Vertex{up, down}
	connect(g, up, "src", "", down, dataflow.Forward)
	dg, err := w.x.OpenInputGate("job-1", 1, []exchange.EdgeInputs{{Edge: 0, FromSubtasks: []int{0}, ToSubtask: 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dg.Close)
	ctl, st := NewControl(), newMemStore()
	d := Deployment{
		ID: ID{JobID: "job-1", Attempt: 1, VertexID: "src"}, Graph: g,
		Placements:    map[string][]Address{"src": {{WorkerID: "A"}}, "down": {{WorkerID: "A"}}},
		LocalWorkerID: "A", CheckpointDir: "mem://root/job-1", Control: ctl,
	}
	b := &fakeBuilder{sources: map[string]func(*dataflow.Context) dataflow.Source{
		"src": func(*dataflow.Context) dataflow.Source { return idleEndSource{} },
	}}
	ended := make(chan struct{})
	go func() {
		_ = Run(ctx, d, Env{Exchange: w.x, Builder: b, Reporter: &reports{}, OpenStore: st.open, InputEnded: func() { close(ended) }}, nil)
	}()
	down2 := readGate(ctx, dg)
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("InputEnded not called")
	}
	eventually(t, 10*time.Second, func() bool { return len(down2.kinds()) >= 3 }, "idle, active, final watermark")
	down2.mu.Lock()
	defer down2.mu.Unlock()
	var got []string
	for _, e := range down2.els {
		switch e.Kind {
		case dataflow.KindIdle:
			got = append(got, fmt.Sprintf("idle=%v", e.Idle))
		case dataflow.KindWatermark:
			got = append(got, "watermark")
		}
	}
	if want := "[idle=true idle=false watermark]"; fmt.Sprint(got) != want {
		t.Fatalf("downstream got %v, want %s", got, want)
	}
}

// A source whose input ends right after a stop-with-savepoint barrier emits
// nothing after it: completed, the task ends without a final watermark;
// aborted, the source ends its input normally (final watermark, then the
// wait for the final checkpoint).
func TestSourceEndsWhileStopping(t *testing.T) {
	for _, complete := range []bool{true, false} {
		t.Run(fmt.Sprintf("complete=%v", complete), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			src := &posSource{n: 3, end: true, hold: make(chan struct{})}
			ctl, rep, _, down, done := runSourceTask(t, ctx, src, nil)
			eventually(t, 10*time.Second, func() bool { r, _, _ := down.upTo(); return len(r) == 3 }, "3 records")
			ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 1, Savepoint: true, Stop: true})
			eventually(t, 10*time.Second, func() bool { return rep.ack(1) != nil }, "savepoint ack")
			close(src.hold)                   // the input ends while the savepoint is pending
			time.Sleep(50 * time.Millisecond) // a negative check: give what must not come the time to come
			if got := fmt.Sprint(down.kinds()); got != fmt.Sprint([]dataflow.Kind{dataflow.KindBarrier}) {
				t.Fatalf("after the stop barrier, before its outcome: %s", got)
			}
			if complete {
				ctl.Post(Command{Kind: CmdComplete, CheckpointID: 1})
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				want := []dataflow.Kind{dataflow.KindBarrier, dataflow.KindEndOfStream}
				eventually(t, 5*time.Second, func() bool { return fmt.Sprint(down.kinds()) == fmt.Sprint(want) }, "end of stream, no watermark")
				return
			}
			ctl.Post(Command{Kind: CmdAbort, CheckpointID: 1})
			want := []dataflow.Kind{dataflow.KindBarrier, dataflow.KindWatermark}
			eventually(t, 5*time.Second, func() bool { return fmt.Sprint(down.kinds()) == fmt.Sprint(want) }, "the final watermark after the abort")
			ctl.Post(Command{Kind: CmdTrigger, CheckpointID: 2})
			eventually(t, 10*time.Second, func() bool { return rep.ack(2) != nil && rep.ack(2).GetEndOfInput() }, "an end-of-input ack")
			ctl.Post(Command{Kind: CmdComplete, CheckpointID: 2, Final: true})
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
