package kafka

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-stream/weir/connectors/eventtime"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// lockingOutput is a testOutput with a checkpoint lock, like the task's
// SourceOutput; at the n-th record it snapshots the source from inside Emit
// (the record counts as before the barrier).
type lockingOutput struct {
	*testOutput
	lk   sync.Mutex
	src  *Source
	at   int
	snap []byte
	sum  dataflow.SnapshotSummary
}

func (o *lockingOutput) CheckpointLock() sync.Locker { return &o.lk }

func (o *lockingOutput) Emit(r *dataflow.Record) error {
	if err := o.testOutput.Emit(r); err != nil {
		return err
	}
	if o.testOutput.n() == o.at {
		b, err := o.src.Snapshot(1)
		if err != nil {
			return err
		}
		o.snap, o.sum = b, o.src.SnapshotSummary()
		o.sum.Offsets = append([]dataflow.PartitionOffset(nil), o.sum.Offsets...)
	}
	return nil
}

func TestSourceSnapshotRestoreRescaled(t *testing.T) {
	const parts, perPart, cut = 4, 20, 30
	_, brokers := newCluster(t, kfake.SeedTopics(parts, "ev"))
	cl := newProducer(t, brokers)
	for p := int32(0); p < parts; p++ {
		var vals []string
		for i := range perPart {
			vals = append(vals, jsonOf(t, map[string]any{"p": p, "i": i, "ts": 1000*int(p) + i}))
		}
		produce(t, cl, "ev", p, vals...)
	}
	node := func() *spec.Node {
		n := kafkaNode("src", brokers, "ev", func(k *spec.KafkaSource) { k.Bounded = true })
		n.Source.EventTime = &spec.EventTime{Field: "ts"}
		return n
	}
	// One subtask reads everything and snapshots after the 30th record.
	out := &lockingOutput{testOutput: newTestOutput(), at: cut}
	_, done := startSource(t, testCtx(t, 30*time.Second), node(), &dataflow.Context{Subtask: 0, Parallelism: 1}, out,
		func(s *Source) { out.src = s })
	if err := wait(t, done, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if out.snap == nil {
		t.Fatal("no snapshot taken")
	}
	before := map[string]bool{}
	for _, r := range out.snapshot()[:cut] {
		before[fmt.Sprint(r.Fields.Get("p"), "/", r.Fields.Get("i"))] = true
	}
	var sum int64
	for _, o := range out.sum.Offsets {
		if o.Topic != "ev" {
			t.Fatalf("summary %+v", o)
		}
		sum += o.Offset
	}
	if sum != cut || len(out.sum.Offsets) != parts {
		t.Fatalf("snapshot offsets %+v, want %d records in all", out.sum.Offsets, cut)
	}
	// Restored at parallelism 2, each subtask keeps its partitions and
	// reads exactly what came after the snapshot.
	after := map[string]int{}
	for sub := range 2 {
		o := newTestOutput()
		r, done := startSource(t, testCtx(t, 30*time.Second), node(), &dataflow.Context{Subtask: sub, Parallelism: 2}, o,
			func(s *Source) {
				if err := s.Restore([][]byte{out.snap, nil}); err != nil {
					t.Fatal(err)
				}
				for p := range s.start {
					if int(p)%2 != sub {
						t.Errorf("subtask %d restored partition %d", sub, p)
					}
				}
				for p, ts := range s.startTs {
					if (ts == eventtime.NoWatermark) != (s.start[p] == 0) {
						t.Errorf("partition %d restored at offset %d with max event time %d", p, s.start[p], ts)
					}
				}
			})
		if err := wait(t, done, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		for _, rec := range o.snapshot() {
			k := fmt.Sprint(rec.Fields.Get("p"), "/", rec.Fields.Get("i"))
			if before[k] {
				t.Errorf("record %s read again after the restore", k)
			}
			after[k]++
		}
		// A snapshot after Run keeps the restored max event times.
		b, err := r.Snapshot(2)
		if err != nil {
			t.Fatal(err)
		}
		_, ps, err := decodeState(b)
		if err != nil || len(ps) != parts/2 {
			t.Fatalf("state %v %v", ps, err)
		}
		for _, p := range ps {
			if p.off != perPart || p.mts != int64(1000*int(p.p)+perPart-1) {
				t.Errorf("partition %+v after reading everything", p)
			}
		}
	}
	if len(after)+len(before) != parts*perPart {
		t.Fatalf("%d before + %d after the snapshot, want %d", len(before), len(after), parts*perPart)
	}
}

func TestSourceStateDecoding(t *testing.T) {
	s := &Source{node: "src", cfg: spec.KafkaSource{Topic: "t"}, subtask: 1, parallelism: 2, lk: noLock{}}
	s.setContext(nil)
	s.subtask, s.parallelism = 1, 2
	s.start = map[int32]int64{1: 5, 3: 7, 2: 9}
	s.startTs = map[int32]int64{1: 100}
	b, err := s.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	topic, ps, err := decodeState(b)
	if err != nil || topic != "t" || len(ps) != 2 || ps[0] != (statePart{1, 5, 100}) || ps[1] != (statePart{3, 7, eventtime.NoWatermark}) {
		t.Fatalf("decoded %q %+v %v", topic, ps, err)
	}
	for i := range b {
		if _, _, err := decodeState(b[:i+1]); i < len(b)-1 && err == nil {
			t.Errorf("truncated state of %d bytes decoded", i+1)
		}
	}
	other := &Source{node: "src", cfg: spec.KafkaSource{Topic: "other"}, parallelism: 1}
	other.setContext(nil)
	if err := other.Restore([][]byte{b}); err != nil || len(other.start) != 0 {
		t.Fatalf("another topic's offsets restored: %v %v", other.start, err)
	}
	if err := other.Restore([][]byte{{9}}); err == nil {
		t.Fatal("unknown version restored")
	}
}

func TestSinkSnapshotFlushes(t *testing.T) {
	_, brokers := newCluster(t, kfake.SeedTopics(2, "out"))
	s := openSink(t, sinkNode(brokers, "out", nil), &dataflow.Context{Node: "out"})
	for i := range 100 {
		if err := s.Process(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"i": int64(i)})}, nil); err != nil {
			t.Fatal(err)
		}
	}
	state, err := s.Snapshot(1)
	if err != nil || len(state) != 0 {
		t.Fatalf("snapshot %q %v", state, err)
	}
	if got := s.acks.count(); got != 100 {
		t.Fatalf("%d of 100 records acknowledged when Snapshot returned", got)
	}
	if err := s.Restore([][]byte{nil}); err != nil {
		t.Fatal(err)
	}
}
