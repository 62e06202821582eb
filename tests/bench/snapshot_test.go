package main

import (
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// BenchmarkWindowSnapshot500kKeys is the synchronous part of one subtask's
// checkpoint in the keys1m benchmark (1M keys at parallelism 2): Snapshot of
// a count() window holding 500,000 int64 keys in one open window. It runs
// on the task goroutine, so processing stops for as long as one op takes.
// Profile it with
//
//	go test ./tests/bench -run '^$' -bench WindowSnapshot -cpuprofile /tmp/snap.prof
func BenchmarkWindowSnapshot500kKeys(b *testing.B) {
	const keys = 500_000
	w := spec.Window{Tumbling: spec.Duration(1000 * time.Hour), Aggregates: spec.Fields{{Name: "count", Expr: "count()"}}}
	job := &spec.Job{Pipeline: []spec.Node{{Name: "kb", KeyBy: &spec.KeyBy{Expr: "id % 1000000"}}, {Name: "win", Window: &w}}}
	op, err := operator.New(job, &job.Pipeline[1], optest.Context("win"))
	if err != nil {
		b.Fatal(err)
	}
	if err := op.Open(optest.Context("win")); err != nil {
		b.Fatal(err)
	}
	out := &optest.Discard{}
	for i := range int64(keys) {
		r := dataflow.Record{Key: i * 2, Time: 1_700_000_000_000 + i, Fields: dataflow.FieldsOf(map[string]any{"id": i * 2})}
		if err := op.Process(&r, out); err != nil {
			b.Fatal(err)
		}
	}
	snap := op.(dataflow.Snapshotter)
	b.ReportAllocs()
	b.ResetTimer()
	var size int
	for i := range b.N {
		data, err := snap.Snapshot(int64(i + 1))
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/keys, "ns/key")
}
