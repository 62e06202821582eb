package kafka

import (
	"testing"

	"github.com/IBM/sarama"
)

func TestScanFetched(t *testing.T) {
	batch := func(first int64, n int, pid int64, txn, control bool) *sarama.Records {
		rb := &sarama.RecordBatch{FirstOffset: first, LastOffsetDelta: int32(n - 1), ProducerID: pid, IsTransactional: txn, Control: control}
		for i := range n {
			rb.Records = append(rb.Records, &sarama.Record{OffsetDelta: int64(i)})
		}
		return &sarama.Records{RecordBatch: rb}
	}
	abortedTail := &sarama.FetchResponseBlock{
		AbortedTransactions: []*sarama.AbortedTransaction{{ProducerID: 5, FirstOffset: 10}},
		RecordsSet:          []*sarama.Records{batch(10, 3, 5, true, false), batch(13, 1, 5, true, true)},
	}
	committedTail := &sarama.FetchResponseBlock{
		RecordsSet: []*sarama.Records{batch(10, 3, 6, true, false), batch(13, 1, 6, true, true)},
	}
	for _, tc := range []struct {
		name        string
		blk         *sarama.FetchResponseBlock
		from, end   int64
		iso         sarama.IsolationLevel
		vis         bool
		wantCovered int64
	}{
		{"aborted tail, read_committed", abortedTail, 10, 14, sarama.ReadCommitted, false, 14},
		{"aborted tail, read_uncommitted", abortedTail, 10, 14, sarama.ReadUncommitted, true, 10},
		{"only the marker left", committedTail, 13, 14, sarama.ReadCommitted, false, 14},
		{"committed data left", committedTail, 12, 14, sarama.ReadCommitted, true, 12},
		{"data at or past the end is not ours", committedTail, 13, 13, sarama.ReadCommitted, false, 14},
	} {
		vis, covered := scanFetched(tc.blk, tc.from, tc.end, tc.iso)
		if vis != tc.vis || (!vis && covered != tc.wantCovered) {
			t.Errorf("%s: visible %v covered %d; want %v %d", tc.name, vis, covered, tc.vis, tc.wantCovered)
		}
	}
}
