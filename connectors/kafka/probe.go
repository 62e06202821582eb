package kafka

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
)

const probeFetchBytes = 1 << 20

// visibleBefore reports whether partition p holds a record that a reader
// with isolation iso would see at an offset in [from, end). The bounded
// source asks when a partition below its end goes quiet: sarama skips
// transaction markers and aborted records without telling its position, so
// the source looks at the log itself. In doubt it answers true (keep
// waiting): ending early would lose records.
func visibleBefore(client sarama.Client, topic string, p int32, from, end int64, iso sarama.IsolationLevel) (bool, error) {
	b, err := client.Leader(topic, p)
	if err != nil {
		return true, fmt.Errorf("partition %d: find leader: %w", p, err)
	}
	for range 16 {
		if from >= end {
			return false, nil
		}
		req := &sarama.FetchRequest{
			Version:      11,
			MinBytes:     1,
			MaxBytes:     probeFetchBytes,
			Isolation:    iso,
			SessionEpoch: -1,
		}
		req.AddBlock(topic, p, from, probeFetchBytes, -1)
		resp, err := b.Fetch(req)
		if err != nil {
			return true, fmt.Errorf("partition %d: probe fetch: %w", p, err)
		}
		blk := resp.GetBlock(topic, p)
		if blk == nil {
			return true, fmt.Errorf("partition %d: probe fetch: %w", p, sarama.ErrIncompleteResponse)
		}
		if !errors.Is(blk.Err, sarama.ErrNoError) {
			return true, fmt.Errorf("partition %d: probe fetch at offset %d: %w", p, from, blk.Err)
		}
		if len(blk.RecordsSet) == 0 {
			// Nothing stored at or after from, below what the broker
			// lets this reader see.
			return false, nil
		}
		visible, covered := scanFetched(blk, from, end, iso)
		if visible {
			return true, nil
		}
		if covered <= from {
			return true, nil // no progress: in doubt, wait
		}
		from = covered
	}
	return true, nil
}

// scanFetched looks for a visible record in [from, end) in one fetched
// partition block, following Kafka's consumer rules for read_committed: an
// aborted transaction's records are hidden from its first offset until its
// producer's next control batch (the abort marker). It returns the offset
// up to which the block was examined.
func scanFetched(blk *sarama.FetchResponseBlock, from, end int64, iso sarama.IsolationLevel) (visible bool, covered int64) {
	covered = from
	aborted := slices.Clone(blk.AbortedTransactions)
	slices.SortFunc(aborted, func(a, b *sarama.AbortedTransaction) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	inAborted := map[int64]bool{}
	for _, rs := range blk.RecordsSet {
		if rs == nil {
			continue
		}
		if rs.RecordBatch == nil {
			if rs.MsgSet != nil {
				for _, m := range rs.MsgSet.Messages {
					if m.Offset >= from && m.Offset < end {
						return true, covered
					}
				}
			}
			continue
		}
		rb := rs.RecordBatch
		last := rb.FirstOffset + int64(rb.LastOffsetDelta)
		for len(aborted) > 0 && aborted[0].FirstOffset <= last {
			inAborted[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		switch {
		case rb.PartialTrailingRecord:
			// Truncated: what it holds is unknown; look again from here.
			if rb.FirstOffset > covered {
				covered = rb.FirstOffset
			}
			return false, covered
		case rb.Control:
			delete(inAborted, rb.ProducerID)
		case iso == sarama.ReadCommitted && rb.IsTransactional && inAborted[rb.ProducerID]:
		default:
			for _, r := range rb.Records {
				if off := rb.FirstOffset + r.OffsetDelta; off >= from && off < end {
					return true, covered
				}
			}
		}
		if last+1 > covered {
			covered = last + 1
		}
	}
	return false, covered
}
