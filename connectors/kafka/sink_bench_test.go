package kafka

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// BenchmarkSinkDelivery compares the at-least-once and the exactly-once
// sink writing ip-visits-like records to an in-process broker, with a
// checkpoint (flush or pre-commit, then commit) every 20000 records.
func BenchmarkSinkDelivery(b *testing.B) {
	for _, delivery := range []string{DeliveryAtLeastOnce, DeliveryExactlyOnce} {
		b.Run(delivery, func(b *testing.B) {
			_, brokers := newCluster(b, kfake.SeedTopics(4, "out"))
			node := sinkNode(brokers, "out", func(k *spec.KafkaSink) { k.Key = "ip"; k.Delivery = delivery })
			dctx := eosCtx("bench", 0, 1)
			s, err := NewSink(node, dctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Open(dctx); err != nil {
				b.Fatal(err)
			}
			defer s.Close(nil)
			recs := make([]*dataflow.Record, 256)
			for i := range recs {
				recs[i] = &dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"ip": fmt.Sprintf("10.0.%d.%d", i/16, i%16),
					"window_start": int64(1700000040000), "window_end": int64(1700000100000), "count": int64(i), "bytes": int64(48213 + i)})}
			}
			chk := int64(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Process(recs[i%len(recs)], nil); err != nil {
					b.Fatal(err)
				}
				if (i+1)%20000 == 0 || i == b.N-1 {
					chk++
					if _, err := s.Snapshot(chk); err != nil {
						b.Fatal(err)
					}
					if err := s.NotifyCheckpointComplete(context.Background(), chk); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
