package operator

import (
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// benchKeyed pushes records over 10,000 keys with event time rising 1 ms
// per record and a watermark every 1,000 records through op.
func benchKeyed(b *testing.B, op dataflow.Operator) {
	if err := op.Open(optest.Context("op")); err != nil {
		b.Fatal(err)
	}
	out := &optest.Discard{}
	shape := dataflow.MustShape("id", "price")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range int64(b.N) {
		r := dataflow.Record{Key: i * 7919 % 10_000, Time: i, Fields: dataflow.NewFields(shape, []any{i, i * 31 % 1000})}
		if err := op.Process(&r, out); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := op.(dataflow.WatermarkHandler).ProcessWatermark(i-100, out); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkDedup(b *testing.B) {
	benchKeyed(b, dedupOp(b, nil, spec.Dedup{Within: kms(5000)}))
}

func BenchmarkRunning(b *testing.B) {
	benchKeyed(b, runningOp(b, nil, spec.Running{Aggregates: spec.Fields{{Name: "n", Expr: "count()"}, {Name: "s", Expr: "sum(price)"}, {Name: "hi", Expr: "max(price)"}}}))
}

func BenchmarkTopN(b *testing.B) {
	benchKeyed(b, topNOp(b, nil, spec.TopN{N: 3, OrderBy: "price DESC", Tumbling: kms(60_000)}))
}
