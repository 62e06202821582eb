package datagen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/connectors/accesslog"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// collector is a SourceOutput that keeps what it is given.
type collector struct {
	recs    []dataflow.Record
	wms     []int64
	idle    []bool
	onEmit  func(n int) error
	discard bool
	n       int
}

func (c *collector) Emit(r *dataflow.Record) error {
	c.n++
	if !c.discard {
		c.recs = append(c.recs, *r)
	}
	if c.onEmit != nil {
		return c.onEmit(c.n)
	}
	return nil
}
func (c *collector) EmitSide(string, *dataflow.Record) error { return nil }
func (c *collector) EmitWatermark(wm int64) error            { c.wms = append(c.wms, wm); return nil }
func (c *collector) MarkIdle(idle bool) error                { c.idle = append(c.idle, idle); return nil }

func node(d spec.DatagenSource, et *spec.EventTime) *spec.Node {
	return &spec.Node{Name: "gen", Source: &spec.Source{Datagen: &d, EventTime: et}}
}

func build(t testing.TB, n *spec.Node, sub, par int) *Source {
	t.Helper()
	src, err := NewSource(n, &dataflow.Context{Node: n.Name, Subtask: sub, Parallelism: par})
	if err != nil {
		t.Fatal(err)
	}
	return src.(*Source)
}

func run(t testing.TB, s *Source, out *collector) {
	t.Helper()
	if err := s.Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
}

func TestSequenceSplitAcrossSubtasks(t *testing.T) {
	n := node(spec.DatagenSource{Profile: "sequence", Count: 10}, nil)
	seen := map[int64]bool{}
	for sub := range 3 {
		out := &collector{}
		run(t, build(t, n, sub, 3), out)
		for _, r := range out.recs {
			id := r.Fields.Get("id").(int64)
			if seen[id] || id%3 != int64(sub) || r.Origin.Offset != id || r.Origin.Source != "gen" {
				t.Fatalf("subtask %d emitted %v at %v", sub, r.Fields, r.Origin)
			}
			if r.Fields.Get("ts").(int64) != accesslog.DefaultStart+id || r.Time != dataflow.NoTime {
				t.Fatalf("record %v time %d", r.Fields, r.Time)
			}
			seen[id] = true
		}
		if len(out.wms) != 0 {
			t.Fatal("watermarks without event time")
		}
	}
	if len(seen) != 10 {
		t.Fatalf("%d distinct ids, want 10", len(seen))
	}
}

func TestAccessLogMatchesGenerator(t *testing.T) {
	const count = 5000
	var want []accesslog.Event
	_ = accesslog.Generate(accesslog.Config{Seed: 42, Events: count}, func(i int64, p int32, e accesslog.Event) error {
		want = append(want, e)
		return nil
	})
	n := node(spec.DatagenSource{Seed: 42, Count: count}, &spec.EventTime{Field: "ts", MaxOutOfOrderness: spec.Duration(5 * time.Second)})
	got := 0
	for sub := range 2 {
		out := &collector{}
		run(t, build(t, n, sub, 2), out)
		maxTs := int64(-1 << 62)
		lastWM := int64(-1 << 63)
		for _, r := range out.recs {
			w := want[r.Origin.Offset]
			f := r.Fields.Map()
			if f["ip"] != w.IP || f["ts"] != w.Ts || f["url"] != w.URL || f["status"] != int64(w.Status) || f["bytes"] != int64(w.Bytes) || r.Time != w.Ts {
				t.Fatalf("record %d: %v, want %+v", r.Origin.Offset, f, w)
			}
			maxTs = max(maxTs, r.Time)
			got++
		}
		for _, wm := range out.wms {
			if wm <= lastWM {
				t.Fatalf("watermark went from %d to %d", lastWM, wm)
			}
			lastWM = wm
		}
		if len(out.wms) < 2 || lastWM != maxTs-5000-1 {
			t.Fatalf("subtask %d: %d watermarks, last %d, want %d", sub, len(out.wms), lastWM, maxTs-5001)
		}
	}
	if got != count {
		t.Fatalf("%d records, want %d", got, count)
	}
}

// Watermarks never make an in-time access-log event late, and they keep up
// with event time even when the source runs far ahead of the wall clock.
func TestWatermarksKeepUpWithEventTime(t *testing.T) {
	n := node(spec.DatagenSource{Seed: 1, Count: 100000}, &spec.EventTime{Field: "ts", MaxOutOfOrderness: spec.Duration(5 * time.Second),
		WatermarkInterval: spec.Duration(time.Hour)})
	s := build(t, n, 0, 1)
	g := accesslog.NewGenerator(accesslog.Config{Seed: 1, Events: 100000})
	var wm int64 = -1 << 63
	out := &collector{discard: true}
	lateDropped := 0
	maxTs := int64(-1 << 62)
	out.onEmit = func(k int) error {
		if len(out.wms) > 0 {
			wm = out.wms[len(out.wms)-1]
		}
		e, _, late := g.At(int64(k - 1))
		if late {
			if e.Ts <= wm {
				lateDropped++
			}
		} else if e.Ts <= wm {
			t.Fatalf("event %d at %d is behind watermark %d", k-1, e.Ts, wm)
		}
		if maxTs-wm > 5001+watermarkEventTimeStep+256*5 && len(out.wms) > 0 {
			t.Fatalf("watermark %d lags event time %d by %d ms", wm, maxTs, maxTs-wm)
		}
		maxTs = max(maxTs, e.Ts)
		return nil
	}
	run(t, s, out)
	if lateDropped == 0 {
		t.Fatal("no late event was behind the watermark")
	}
}

func TestEventTimeExpressionAndErrors(t *testing.T) {
	n := node(spec.DatagenSource{Profile: "sequence", Count: 5}, &spec.EventTime{Field: "ts + 1"})
	out := &collector{}
	run(t, build(t, n, 0, 1), out)
	for _, r := range out.recs {
		if r.Time != r.Fields.Get("ts").(int64)+1 {
			t.Fatalf("time %d for %v", r.Time, r.Fields)
		}
	}

	bad := node(spec.DatagenSource{Count: 5}, &spec.EventTime{Field: "ip"})
	err := build(t, bad, 0, 1).Run(context.Background(), &collector{})
	var re *dataflow.RecordError
	if !errors.As(err, &re) || re.Origin.Offset != 0 {
		t.Fatalf("string event time: %v", err)
	}
	var counters dataflow.Counters
	src, _ := NewSource(bad, &dataflow.Context{Parallelism: 1, OnError: dataflow.SkipOnError{Counters: &counters}})
	out = &collector{}
	if err := src.Run(context.Background(), out); err != nil || len(out.recs) != 0 || counters.SkippedInvalid.Load() != 5 {
		t.Fatalf("skip policy: err %v, %d records, %d skipped", err, len(out.recs), counters.SkippedInvalid.Load())
	}
}

func TestRateAndCancel(t *testing.T) {
	n := node(spec.DatagenSource{Profile: "sequence", Count: 300, Rate: 2000}, nil)
	start := time.Now()
	run(t, build(t, n, 0, 2), &collector{})
	// 150 records at 1000/s per subtask, with a burst of 100.
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("rate limit not applied: %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	un := node(spec.DatagenSource{Count: 0}, &spec.EventTime{Field: "ts"})
	out := &collector{discard: true}
	out.onEmit = func(k int) error {
		if k == 10000 {
			cancel()
		}
		return nil
	}
	if err := build(t, un, 0, 1).Run(ctx, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled unbounded run returned %v", err)
	}
}

func TestSnapshotRestore(t *testing.T) {
	const count = 1000
	n := node(spec.DatagenSource{Profile: "sequence", Count: count}, nil)
	emitted := map[int64]int{}
	stop := errors.New("stop")

	// Two subtasks run to different points and snapshot there.
	var states [][]byte
	for sub, at := range []int{100, 230} {
		s := build(t, n, sub, 2)
		out := &collector{discard: true}
		out.onEmit = func(k int) error {
			if k == at {
				st, _ := s.Snapshot(1)
				states = append(states, st)
				return stop
			}
			return nil
		}
		out.discard = false
		if err := s.Run(context.Background(), out); err != stop {
			t.Fatal(err)
		}
		for _, r := range out.recs {
			emitted[r.Origin.Offset]++
		}
	}
	// Same parallelism: subtask 1 resumes where it was.
	s := build(t, n, 1, 2)
	if err := s.Restore([][]byte{states[1]}); err != nil {
		t.Fatal(err)
	}
	if s.next.Load() != 2*230+1 {
		t.Fatalf("resumed at %d", s.next.Load())
	}
	// Rescaled to 3: together the new subtasks emit exactly the rest.
	for sub := range 3 {
		s := build(t, n, sub, 3)
		if err := s.Restore(states); err != nil {
			t.Fatal(err)
		}
		out := &collector{}
		run(t, s, out)
		for _, r := range out.recs {
			emitted[r.Origin.Offset]++
		}
	}
	for i := int64(0); i < count; i++ {
		if emitted[i] != 1 {
			t.Fatalf("record %d emitted %d times", i, emitted[i])
		}
	}
	if err := build(t, n, 0, 3).Restore(states[:1]); err == nil {
		t.Fatal("rescale with a missing old subtask accepted")
	}
	if err := build(t, n, 0, 3).Restore([][]byte{{1, 2}}); err == nil {
		t.Fatal("garbage state accepted")
	}
}

func TestNewSourceValidates(t *testing.T) {
	for _, n := range []*spec.Node{
		{Name: "x"},
		node(spec.DatagenSource{Profile: "nope"}, nil),
		node(spec.DatagenSource{Count: -1}, nil),
		node(spec.DatagenSource{Rate: -1}, nil),
		node(spec.DatagenSource{}, &spec.EventTime{Field: "ts +"}),
	} {
		if _, err := NewSource(n, &dataflow.Context{Parallelism: 1}); err == nil {
			t.Errorf("accepted %+v", n)
		}
	}
	if _, err := NewSource(node(spec.DatagenSource{}, nil), &dataflow.Context{Subtask: 2, Parallelism: 2}); err == nil {
		t.Error("accepted subtask 2 of 2")
	}
}

type nopOutput struct{ n int64 }

func (o *nopOutput) Emit(*dataflow.Record) error             { o.n++; return nil }
func (o *nopOutput) EmitSide(string, *dataflow.Record) error { return nil }
func (o *nopOutput) EmitWatermark(int64) error               { return nil }
func (o *nopOutput) MarkIdle(bool) error                     { return nil }

func benchRun(b *testing.B, d spec.DatagenSource, et *spec.EventTime) {
	d.Count = int64(b.N)
	s := build(b, node(d, et), 0, 1)
	out := &nopOutput{}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := s.Run(context.Background(), out); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(out.n)/time.Since(start).Seconds(), "records/s")
}

func BenchmarkAccessLog(b *testing.B) {
	benchRun(b, spec.DatagenSource{Seed: 1}, &spec.EventTime{Field: "ts", MaxOutOfOrderness: spec.Duration(5 * time.Second)})
}

func BenchmarkAccessLogExprTime(b *testing.B) {
	benchRun(b, spec.DatagenSource{Seed: 1}, &spec.EventTime{Field: "ts * 1"})
}

func BenchmarkSequence(b *testing.B) {
	benchRun(b, spec.DatagenSource{Profile: "sequence"}, &spec.EventTime{Field: "ts"})
}

func TestWatermarkCadenceWithLargeOutOfOrderness(t *testing.T) {
	n := node(spec.DatagenSource{Seed: 1, Count: 100000}, &spec.EventTime{Field: "ts",
		MaxOutOfOrderness: spec.Duration(time.Minute), WatermarkInterval: spec.Duration(time.Hour)})
	out := &collector{discard: true}
	run(t, build(t, n, 0, 1), out)
	// 500 s of event time, one watermark per 30 s of it plus the first and
	// the last.
	if len(out.wms) < 10 || len(out.wms) > 40 {
		t.Fatalf("%d watermarks", len(out.wms))
	}
}

func FuzzRestore(f *testing.F) {
	s0 := &Source{node: "gen", par: 2, sub: 1}
	s0.next.Store(41)
	st, _ := s0.Snapshot(1)
	f.Add(st, st)
	f.Add([]byte{}, []byte{1})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s := build(t, node(spec.DatagenSource{Profile: "sequence", Count: 50}, nil), 0, 3)
		if err := s.Restore([][]byte{a, b}); err != nil {
			return
		}
		_ = s.Run(context.Background(), &collector{discard: true})
	})
}

// The node's schema is enforced on generated records as on decoded ones: a
// declared type the profile does not produce goes to on_error, counted; a
// float field takes the generator's integers converted.
func TestSchemaEnforced(t *testing.T) {
	n := node(spec.DatagenSource{Count: 5}, nil)
	n.Source.Schema = map[string]string{"status": "string"}
	err := build(t, n, 0, 1).Run(context.Background(), &collector{})
	var re *dataflow.RecordError
	if !errors.As(err, &re) || re.Origin.Offset != 0 || !strings.Contains(err.Error(), `field "status": want string (the source's schema), got int`) {
		t.Fatalf("int status under a string schema: %v", err)
	}
	var counters dataflow.Counters
	src, _ := NewSource(n, &dataflow.Context{Parallelism: 1, OnError: dataflow.SkipOnError{Counters: &counters}})
	out := &collector{}
	if err := src.Run(context.Background(), out); err != nil || len(out.recs) != 0 || counters.SkippedInvalid.Load() != 5 {
		t.Fatalf("skip policy: err %v, %d records, %d skipped", err, len(out.recs), counters.SkippedInvalid.Load())
	}

	n.Source.Schema = map[string]string{"status": "int", "bytes": "float", "ip": "string", "url": "string", "ts": "int"}
	out = &collector{}
	run(t, build(t, n, 0, 1), out)
	if len(out.recs) != 5 {
		t.Fatalf("%d records, want 5", len(out.recs))
	}
	for _, r := range out.recs {
		if _, ok := r.Fields.Get("bytes").(float64); !ok {
			t.Fatalf("bytes not converted to float: %v", r.Fields)
		}
	}

	n.Source.Schema = map[string]string{"status": "decimal"}
	if _, err := NewSource(n, &dataflow.Context{Parallelism: 1}); err == nil {
		t.Fatal("unknown schema type accepted")
	}
}
