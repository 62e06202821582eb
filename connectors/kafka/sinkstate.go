package kafka

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// sinkStateVersion is the version of the exactly-once sink's snapshot.
const sinkStateVersion = 1

// maxSinkState bounds a snapshot the decoder accepts.
const maxSinkState = 16 << 20

// sinkState is one subtask's snapshot of an exactly-once sink: where its
// transactional ids continue and the transactions it pre-committed that were
// not known to be committed when the barrier passed.
type sinkState struct {
	Version int `json:"version"`
	// Job is the job id the transactional ids were derived from.
	Job string `json:"job"`
	// Base is the subtask's transactional id prefix; transaction k of the
	// subtask has id Base-k.
	Base    string `json:"base"`
	Subtask int    `json:"subtask"`
	// NextSeq is k of the next transaction: every id Base-j with j <
	// NextSeq was committed or is in Pending; ids from NextSeq on were not
	// used before the barrier.
	NextSeq int64        `json:"next_seq"`
	Pending []pendingTxn `json:"pending,omitempty"`
}

// pendingTxn is a transaction pre-committed for a checkpoint.
type pendingTxn struct {
	txnHandle
	Checkpoint int64 `json:"checkpoint"`
}

func (p pendingTxn) String() string {
	return fmt.Sprintf("%s of checkpoint %d", p.txnHandle, p.Checkpoint)
}

// txnBase is the transactional id prefix of a sink subtask: unique across
// jobs on a cluster (job ids are), across sinks of a job (node names are)
// and across subtasks.
func txnBase(job, node string, subtask int) string {
	return "weir-" + job + "-" + node + "-" + strconv.Itoa(subtask)
}

// txnID is transaction seq of a subtask.
func txnID(base string, seq int64) string { return base + "-" + strconv.FormatInt(seq, 10) }

func encodeSinkState(s sinkState) ([]byte, error) {
	s.Version = sinkStateVersion
	return json.Marshal(s)
}

// decodeSinkState reads and checks a snapshot. Its errors wrap
// ErrBadSinkState and say what is wrong.
func decodeSinkState(b []byte) (sinkState, error) {
	var s sinkState
	if len(b) > maxSinkState {
		return s, fmt.Errorf("%w: %d bytes, more than %d", ErrBadSinkState, len(b), maxSinkState)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return sinkState{}, fmt.Errorf("%w: %v", ErrBadSinkState, err)
	}
	if dec.More() {
		return sinkState{}, fmt.Errorf("%w: data after the state", ErrBadSinkState)
	}
	if err := s.check(); err != nil {
		return sinkState{}, fmt.Errorf("%w: %v", ErrBadSinkState, err)
	}
	if len(s.Pending) == 0 {
		s.Pending = nil
	}
	return s, nil
}

func (s *sinkState) check() error {
	switch {
	case s.Version != sinkStateVersion:
		return fmt.Errorf("version %d, this weir reads version %d", s.Version, sinkStateVersion)
	case s.Base == "":
		return fmt.Errorf("no transactional id base")
	case s.Subtask < 0:
		return fmt.Errorf("subtask %d", s.Subtask)
	case s.NextSeq < 0:
		return fmt.Errorf("next_seq %d", s.NextSeq)
	}
	for i, p := range s.Pending {
		seq, ok := strings.CutPrefix(p.ID, s.Base+"-")
		n, err := strconv.ParseInt(seq, 10, 64)
		switch {
		case !ok || err != nil || n < 0:
			return fmt.Errorf("pending[%d]: transactional id %q is not under %q", i, p.ID, s.Base)
		case n >= s.NextSeq:
			return fmt.Errorf("pending[%d]: transactional id %q is not below next_seq %d", i, p.ID, s.NextSeq)
		case p.ProducerID < 0 || p.Epoch < 0:
			return fmt.Errorf("pending[%d]: producer id %d, epoch %d", i, p.ProducerID, p.Epoch)
		case p.Checkpoint <= 0:
			return fmt.Errorf("pending[%d]: checkpoint %d", i, p.Checkpoint)
		}
	}
	return nil
}

// sinkIdentity is who restores: the job, the subtask and its parallelism.
type sinkIdentity struct {
	Job         string
	Base        string
	Subtask     int
	Parallelism int
}

// idScan is a range of transactional ids to abort: Base-From, Base-From+1,
// ... up to the first id the broker has never seen (InitProducerID answers
// epoch 0). Ids are used in order without gaps, so nothing past it is open.
type idScan struct {
	Base string
	From int64
}

// recoveryPlan is what a restored exactly-once sink subtask does before its
// first record, in this order: commit Commit (the pre-committed
// transactions of the restored checkpoint, which completed), then abort
// every transaction open under Scans (written after the checkpoint), then
// continue its own ids at NextSeq.
type recoveryPlan struct {
	Commit  []pendingTxn
	Scans   []idScan
	NextSeq int64
}

// planRecovery decides what subtask self does with the states restored into
// it (none for a fresh job or a restart before the first checkpoint). It is
// pure: the broker's answers come later, through probeDone and the commit
// errors.
//
// A state of old subtask j is handled by new subtask j % parallelism (with
// unchanged parallelism: its own). Its pending transactions are committed,
// by checkpoint, whatever job wrote them (they belong to a completed
// checkpoint). Ids after its NextSeq are aborted only when it is this job's:
// a savepoint of another job does not make this job the owner of that job's
// ids. This subtask's own ids are scanned from the restored NextSeq, or from
// 0 when nothing of its own was restored.
func planRecovery(self sinkIdentity, states []sinkState) (recoveryPlan, error) {
	var plan recoveryPlan
	if self.Parallelism <= 0 || self.Subtask < 0 || self.Subtask >= self.Parallelism {
		return plan, fmt.Errorf("subtask %d of %d", self.Subtask, self.Parallelism)
	}
	byBase := map[string]bool{}
	byID := map[string]pendingTxn{}
	ownSeen := false
	for _, s := range states {
		if s.Subtask%self.Parallelism != self.Subtask {
			continue
		}
		if byBase[s.Base] {
			return recoveryPlan{}, fmt.Errorf("%w: two restored states for transactional ids %q", ErrBadSinkState, s.Base)
		}
		byBase[s.Base] = true
		for _, p := range s.Pending {
			if q, dup := byID[p.ID]; dup {
				if q.txnHandle != p.txnHandle {
					return recoveryPlan{}, fmt.Errorf("%w: transactional id %q is pending twice, as %s and %s", ErrBadSinkState, p.ID, q, p)
				}
				continue
			}
			byID[p.ID] = p
			plan.Commit = append(plan.Commit, p)
		}
		if s.Job != self.Job {
			continue
		}
		if s.Base == self.Base {
			ownSeen = true
			plan.NextSeq = s.NextSeq
		}
		plan.Scans = append(plan.Scans, idScan{Base: s.Base, From: s.NextSeq})
	}
	if !ownSeen {
		plan.Scans = append(plan.Scans, idScan{Base: self.Base, From: 0})
	}
	slices.SortFunc(plan.Commit, func(a, b pendingTxn) int {
		return cmp.Or(cmp.Compare(a.Checkpoint, b.Checkpoint), strings.Compare(a.ID, b.ID))
	})
	slices.SortFunc(plan.Scans, func(a, b idScan) int { return strings.Compare(a.Base, b.Base) })
	return plan, nil
}

// maxScan bounds an id scan: a broker that never answers epoch 0 (it
// should, for an id it has not seen) must not keep the restore going.
const maxScan = 100000

// probeDone reports whether an id scan ends at an id that InitProducerID
// answered with epoch: epoch 0 means the broker had never seen the id, so
// no later id was used either.
func probeDone(epoch int16) bool { return epoch == 0 }
