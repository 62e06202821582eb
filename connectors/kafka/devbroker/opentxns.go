package devbroker

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions a crash left open.
//
// kfake, starting on a data directory a crash left behind, treats every
// transaction with records in a partition and no end marker after them as
// aborted, but writes no abort marker. A read_committed reader, told by a
// fetch that the producer's transaction starting at offset o was aborted,
// skips that producer's batches from o on until it reads an abort marker of
// the producer (Kafka's protocol: the marker ends the aborted range). With
// none, it also skips every later transaction of the same producer id in
// that fetch, committed ones included. A producer that keeps its
// transactional id across the crash keeps its producer id (the broker only
// bumps the epoch), so its commits after the restart were invisible: an
// exactly-once weir sink restored from a checkpoint reuses the ids of the
// transactions it aborts, and TestExactlyOnceSurvivesBrokerKill lost 3,569
// committed windows that way. A real broker completes the abort from its
// transaction log, writing the markers; abortCrashedTxns does the same.

// crc32c is the checksum table of RecordBatch CRCs.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// openTxn is a producer with records of a transaction in a partition and no
// end marker after them.
type openTxn struct {
	Topic      string
	Partition  int32
	ProducerID int64
	Epoch      int16
}

// batch attributes (Kafka's RecordBatch format).
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// scanSegment reads the record batches of one segment file (kfake's .dat:
// RecordBatch wire bytes, one after the other) and updates open, producer
// id -> epoch of its transaction without an end marker yet. It stops at the
// first incomplete or corrupt batch, as kfake's loader does, so both see the
// same log.
func scanSegment(raw []byte, open map[int64]int16) {
	for pos := 0; pos+12 <= len(raw); {
		n := int64(binary.BigEndian.Uint32(raw[pos+8 : pos+12]))
		if n > 1<<30 || int64(pos)+12+n > int64(len(raw)) {
			return
		}
		b := raw[pos : pos+12+int(n)]
		if len(b) < 21 || binary.BigEndian.Uint32(b[17:21]) != crc32.Checksum(b[21:], crc32c) {
			return
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			return
		}
		switch {
		case rb.Attributes&attrControl != 0:
			delete(open, rb.ProducerID)
		case rb.Attributes&attrTransactional != 0 && rb.ProducerID >= 0:
			open[rb.ProducerID] = rb.ProducerEpoch
		}
		pos += len(b)
	}
}

// loadsFromSnapshot reports whether kfake will load the partition in pdir
// from the snapshot.json a clean shutdown wrote rather than replay its
// segments (as after a crash): the snapshot lists exactly the segment files
// there are, with their sizes (kfake's snapshotMatchesSegments). Only a
// replay aborts the transactions it finds open.
func loadsFromSnapshot(pdir string, bases []int64) bool {
	raw, err := os.ReadFile(filepath.Join(pdir, "snapshot.json"))
	if err != nil {
		return false
	}
	var snap struct {
		Segments []struct {
			BaseOffset int64 `json:"base_offset"`
			Size       int64 `json:"size"`
		} `json:"segments"`
	}
	if json.Unmarshal(raw, &snap) != nil || len(snap.Segments) != len(bases) || len(bases) == 0 {
		return false
	}
	for i, sg := range snap.Segments {
		if sg.BaseOffset != bases[i] {
			return false
		}
		info, err := os.Stat(filepath.Join(pdir, strconv.FormatInt(sg.BaseOffset, 10)+".dat"))
		if err != nil || info.Size() != sg.Size {
			return false
		}
	}
	return true
}

// scanOpenTxns lists the transactions left open in the partitions of the
// known topics of dataDir, in kfake's layout:
// partitions/<escaped topic>-<partition>/<base offset>.dat.
func scanOpenTxns(dataDir string, topics map[string]bool) ([]openTxn, error) {
	parts := filepath.Join(dataDir, "partitions")
	entries, err := os.ReadDir(parts)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devbroker: data directory %s: %w", dataDir, err)
	}
	var out []openTxn
	for _, e := range entries {
		topic, ok := partitionTopic(e.Name())
		if !e.IsDir() || !ok || !topics[topic] {
			continue
		}
		p, _ := strconv.ParseInt(e.Name()[strings.LastIndexByte(e.Name(), '-')+1:], 10, 32)
		segs, err := os.ReadDir(filepath.Join(parts, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("devbroker: data directory %s: %w", dataDir, err)
		}
		var bases []int64
		for _, s := range segs {
			base, ok := strings.CutSuffix(s.Name(), ".dat")
			if n, err := strconv.ParseInt(base, 10, 64); ok && err == nil && !s.IsDir() {
				bases = append(bases, n)
			}
		}
		slices.Sort(bases)
		if loadsFromSnapshot(filepath.Join(parts, e.Name()), bases) {
			// A clean shutdown: kfake loads the partition from its
			// snapshot and keeps its open transactions (they may be
			// pre-committed ones a sink commits after the restart).
			continue
		}
		open := map[int64]int16{}
		for _, base := range bases {
			raw, err := os.ReadFile(filepath.Join(parts, e.Name(), strconv.FormatInt(base, 10)+".dat"))
			if err != nil {
				return nil, fmt.Errorf("devbroker: data directory %s: %w", dataDir, err)
			}
			scanSegment(raw, open)
		}
		for pid, epoch := range open {
			out = append(out, openTxn{Topic: topic, Partition: int32(p), ProducerID: pid, Epoch: epoch})
		}
	}
	slices.SortFunc(out, func(a, b openTxn) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.ProducerID, b.ProducerID))
	})
	return out, nil
}

// abortCrashedTxns writes an abort marker for every transaction a crash
// left open in dataDir. It runs the broker once on a private port (so that
// no client sees the log before the markers are in it), sends it
// WriteTxnMarkers, and closes it, which saves its state; the broker the
// caller starts next finds every transaction ended.
func abortCrashedTxns(dataDir string, opts []kfake.Opt, log *slog.Logger) error {
	topics, err := knownTopics(dataDir)
	if err != nil || topics == nil {
		return err
	}
	open, err := scanOpenTxns(dataDir, topics)
	if err != nil || len(open) == 0 {
		return err
	}
	c, err := kfake.NewCluster(append(slices.Clip(opts), kfake.Ports(0), kfake.DataDir(dataDir))...)
	if err != nil {
		return fmt.Errorf("devbroker: abort the transactions a crash left open: %w", err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return fmt.Errorf("devbroker: abort the transactions a crash left open: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	for _, o := range open {
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed = o.ProducerID, o.Epoch, false
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = o.Topic, []int32{o.Partition}
		m.Topics = append(m.Topics, mt)
		req.Markers = append(req.Markers, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("devbroker: abort the transactions a crash left open: %w", err)
	}
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("devbroker: abort the transaction of producer id %d left open by a crash in %s/%d: %w", m.ProducerID, t.Topic, p.Partition, err)
				}
			}
		}
	}
	log.Warn("dev broker: aborted the transactions a crash left open (abort markers written)", "transactions", len(open))
	return nil
}
