package operator

import (
	"fmt"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// benchJoin pushes b.N records, alternating left and right over 1,000
// keys, 1 ms apart, with a watermark every 100 records, through the join.
func benchJoin(b *testing.B, join string) {
	node := joinNode(b, join)
	ctx := optest.Context("j")
	op, err := NewJoin(node, ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := op.Open(ctx); err != nil {
		b.Fatal(err)
	}
	ip, wh := op.(dataflow.InputProcessor), op.(dataflow.WatermarkHandler)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	ls := dataflow.MustShape("k", "lid", "lt")
	rs := dataflow.MustShape("k", "rid", "rt")
	out := &optest.Discard{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ts := int64(1_000_000 + i)
		k := keys[(i/2)%len(keys)]
		r := dataflow.Record{Key: k, Time: ts}
		side := i % 2
		if side == joinLeft {
			r.Fields = dataflow.NewFields(ls, []any{k, int64(i), ts})
		} else {
			r.Fields = dataflow.NewFields(rs, []any{k, int64(i), ts})
		}
		if err := ip.ProcessInput(side, &r, out); err != nil {
			b.Fatal(err)
		}
		if i%100 == 99 {
			if err := wh.ProcessWatermark(ts-1, out); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(out.Records)/float64(b.N), "rows/record")
}

func BenchmarkIntervalJoin(b *testing.B) {
	benchJoin(b, `{left: ka, right: kb, type: left, interval: {lower: 2s, upper: 2s}}`)
}

func BenchmarkTumblingWindowJoin(b *testing.B) {
	benchJoin(b, `{left: ka, right: kb, window: {tumbling: 2s}}`)
}

func BenchmarkSessionJoin(b *testing.B) {
	benchJoin(b, `{left: ka, right: kb, window: {session: {gap: 500ms}}}`)
}

func BenchmarkLookupJoin(b *testing.B) {
	benchJoin(b, `{left: ka, right: kb, type: left, lookup: {}}`)
}
