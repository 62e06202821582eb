package operator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// benchWindow pushes b.N records through a window: 1000 string keys in
// turn, event time advancing 1 ms every 100 records (100k records per 1 s
// window), a watermark every 1000 records. One op is one record.
func benchWindow(b *testing.B, w spec.Window) {
	job := &spec.Job{Pipeline: []spec.Node{{Name: "kb", KeyBy: &spec.KeyBy{Expr: "user"}}, {Name: "win", Window: &w}}}
	op, err := operator.New(job, &job.Pipeline[1], optest.Context("win"))
	if err != nil {
		b.Fatal(err)
	}
	if err := op.Open(optest.Context("win")); err != nil {
		b.Fatal(err)
	}
	wh := op.(dataflow.WatermarkHandler)
	const nKeys = 1000
	recs := make([]dataflow.Record, nKeys)
	for i := range recs {
		k := fmt.Sprintf("user-%04d", i)
		recs[i] = dataflow.Record{Key: k, Fields: dataflow.FieldsOf(map[string]any{"user": k, "bytes": int64(i)})}
	}
	out := &optest.Discard{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := &recs[i%nKeys]
		r.Time = int64(i / 100)
		if err := op.Process(r, out); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := wh.ProcessWatermark(int64(i/100)-1, out); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	if err := wh.ProcessWatermark(dataflow.MaxWatermark, out); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(out.Records)/float64(b.N), "results/op")
	// Baseline measured in the same run: counting into a plain Go map keyed
	// by the same (key, window) pairs, which is the floor for this design.
	type pair struct {
		key any
		end int64
	}
	counts := map[pair]int64{}
	start := time.Now()
	for i := range b.N {
		r := &recs[i%nKeys]
		counts[pair{r.Key, int64(i/100) / 1000}]++
		if i%100000 == 99999 {
			clear(counts)
		}
	}
	if base := time.Since(start); base > 0 {
		b.ReportMetric(float64(elapsed)/float64(base), "x-map-baseline")
	}
}

func BenchmarkWindowCount(b *testing.B) {
	benchWindow(b, spec.Window{Tumbling: ms(1000), Aggregates: fields("n", "count()")})
}

func BenchmarkWindowSumSliding(b *testing.B) {
	benchWindow(b, spec.Window{Sliding: &spec.Sliding{Size: ms(1000), Slide: ms(250)},
		Aggregates: fields("n", "count()", "bytes", "sum(bytes)")})
}

// Session windows of 1 s gap over the same records: each key's record (10
// ms after its last) extends the key's one open session, so every record
// merges into a session and moves its timers.
func BenchmarkWindowSession(b *testing.B) {
	benchWindow(b, spec.Window{Session: &spec.Session{Gap: ms(1000)}, Aggregates: fields("n", "count()", "bytes", "sum(bytes)")})
}

// Session windows of 5 ms gap: every record opens a session of its own,
// which fires and is purged 10 ms of event time later.
func BenchmarkWindowSessionShort(b *testing.B) {
	benchWindow(b, spec.Window{Session: &spec.Session{Gap: ms(5)}, Aggregates: fields("n", "count()", "bytes", "sum(bytes)")})
}
