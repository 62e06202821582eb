package kafka

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

func pend(base string, seq int64, pid int64, epoch int16, chk int64) pendingTxn {
	return pendingTxn{txnHandle: txnHandle{ID: txnID(base, seq), ProducerID: pid, Epoch: epoch}, Checkpoint: chk}
}

// TestPlanRecovery: which transactions a restored subtask commits and which
// ids it fences, as a pure function of the restored states.
func TestPlanRecovery(t *testing.T) {
	b0, b1, b2 := txnBase("j", "out", 0), txnBase("j", "out", 1), txnBase("j", "out", 2)
	other0 := txnBase("old", "out", 0)
	self := func(sub, par int) sinkIdentity {
		return sinkIdentity{Job: "j", Base: txnBase("j", "out", sub), Subtask: sub, Parallelism: par}
	}
	cases := []struct {
		name    string
		self    sinkIdentity
		states  []sinkState
		want    recoveryPlan
		wantErr string
	}{
		{
			name: "fresh job: scan own ids from 0",
			self: self(0, 1),
			want: recoveryPlan{Scans: []idScan{{b0, 0}}},
		},
		{
			name:   "nothing pending: continue and fence after next_seq",
			self:   self(0, 1),
			states: []sinkState{{Job: "j", Base: b0, NextSeq: 5}},
			want:   recoveryPlan{Scans: []idScan{{b0, 5}}, NextSeq: 5},
		},
		{
			name: "pending of several checkpoints are committed oldest first",
			self: self(0, 1),
			states: []sinkState{{Job: "j", Base: b0, NextSeq: 9, Pending: []pendingTxn{
				pend(b0, 8, 80, 0, 12), pend(b0, 6, 60, 1, 10), pend(b0, 7, 70, 0, 11),
			}}},
			want: recoveryPlan{
				Commit:  []pendingTxn{pend(b0, 6, 60, 1, 10), pend(b0, 7, 70, 0, 11), pend(b0, 8, 80, 0, 12)},
				Scans:   []idScan{{b0, 9}},
				NextSeq: 9,
			},
		},
		{
			name: "same parallelism: only the own state counts",
			self: self(1, 2),
			states: []sinkState{
				{Job: "j", Base: b0, Subtask: 0, NextSeq: 3, Pending: []pendingTxn{pend(b0, 2, 1, 0, 4)}},
				{Job: "j", Base: b1, Subtask: 1, NextSeq: 7, Pending: []pendingTxn{pend(b1, 6, 2, 0, 4)}},
			},
			want: recoveryPlan{Commit: []pendingTxn{pend(b1, 6, 2, 0, 4)}, Scans: []idScan{{b1, 7}}, NextSeq: 7},
		},
		{
			name: "scale in 3 -> 2: subtask 0 takes old subtasks 0 and 2",
			self: self(0, 2),
			states: []sinkState{
				{Job: "j", Base: b0, Subtask: 0, NextSeq: 3, Pending: []pendingTxn{pend(b0, 2, 1, 0, 4)}},
				{Job: "j", Base: b1, Subtask: 1, NextSeq: 5},
				{Job: "j", Base: b2, Subtask: 2, NextSeq: 4, Pending: []pendingTxn{pend(b2, 3, 3, 0, 4)}},
			},
			want: recoveryPlan{
				Commit:  []pendingTxn{pend(b0, 2, 1, 0, 4), pend(b2, 3, 3, 0, 4)},
				Scans:   []idScan{{b0, 3}, {b2, 4}},
				NextSeq: 3,
			},
		},
		{
			name:   "scale out 1 -> 2: the new subtask scans its ids from 0",
			self:   self(1, 2),
			states: []sinkState{{Job: "j", Base: b0, Subtask: 0, NextSeq: 3}},
			want:   recoveryPlan{Scans: []idScan{{b1, 0}}},
		},
		{
			name:   "savepoint of another job: commit its pending, leave its ids alone",
			self:   self(0, 1),
			states: []sinkState{{Job: "old", Base: other0, NextSeq: 2, Pending: []pendingTxn{pend(other0, 1, 9, 3, 20)}}},
			want:   recoveryPlan{Commit: []pendingTxn{pend(other0, 1, 9, 3, 20)}, Scans: []idScan{{b0, 0}}},
		},
		{
			name:    "two states with the same ids",
			self:    self(0, 1),
			states:  []sinkState{{Job: "j", Base: b0, NextSeq: 1}, {Job: "j", Base: b0, NextSeq: 2}},
			wantErr: "two restored states",
		},
		{
			name: "one transaction pending with two epochs",
			self: self(0, 1),
			states: []sinkState{
				{Job: "j", Base: b0, Subtask: 0, NextSeq: 3, Pending: []pendingTxn{pend(b0, 2, 1, 0, 4)}},
				{Job: "j", Base: b1, Subtask: 0, NextSeq: 3, Pending: []pendingTxn{pend(b0, 2, 1, 1, 4)}},
			},
			wantErr: "pending twice",
		},
		{
			name:    "bad identity",
			self:    sinkIdentity{Job: "j", Base: b0, Subtask: 2, Parallelism: 2},
			wantErr: "subtask 2 of 2",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := planRecovery(c.self, c.states)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("plan\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestProbeDone: an id scan ends at the first id the broker had never
// seen.
func TestProbeDone(t *testing.T) {
	if !probeDone(0) || probeDone(1) || probeDone(7) {
		t.Fatal("probeDone: want true for epoch 0 only")
	}
}

// TestClassifyTxnAnswer: what the sink does with each answer of the
// transaction coordinator; fencing is never retried into a success.
func TestClassifyTxnAnswer(t *testing.T) {
	cases := []struct {
		err  error
		want txnAnswer
	}{
		{nil, answerOK},
		{sarama.ErrNoError, answerOK},
		{sarama.ErrNotCoordinatorForConsumer, answerRefresh},
		{sarama.ErrConsumerCoordinatorNotAvailable, answerRefresh},
		{sarama.ErrConcurrentTransactions, answerRetry},
		{sarama.ErrOffsetsLoadInProgress, answerRetry},
		{sarama.ErrRequestTimedOut, answerRetry},
		{errors.New("read tcp: connection reset"), answerRetry},
		{sarama.ErrProducerFenced, answerFatal},
		{sarama.ErrInvalidProducerEpoch, answerFatal},
		{sarama.ErrInvalidProducerIDMapping, answerFatal},
		{sarama.ErrInvalidTxnState, answerFatal},
		{sarama.ErrTransactionalIDAuthorizationFailed, answerFatal},
	}
	for _, c := range cases {
		if got := classifyTxnAnswer(c.err); got != c.want {
			t.Errorf("classifyTxnAnswer(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	for _, e := range []error{sarama.ErrProducerFenced, sarama.ErrInvalidProducerEpoch, fmt.Errorf("x: %w", sarama.ErrInvalidProducerIDMapping)} {
		if !isFenced(e) {
			t.Errorf("isFenced(%v) = false", e)
		}
	}
}

// TestRequestVersionsFollowTheProtocolVersion: the transaction requests use
// versions the configured Kafka version allows (EndTxn v3 needs 2.8, v2
// 2.7, v1 2.0).
func TestRequestVersionsFollowTheProtocolVersion(t *testing.T) {
	cases := []struct {
		v                  sarama.KafkaVersion
		endTxn, init, prod int16
	}{
		{sarama.V0_11_0_0, 0, 0, 3},
		{sarama.V2_0_0_0, 1, 1, 6},
		{sarama.V2_4_0_0, 1, 2, 8},
		{sarama.V2_5_0_0, 1, 3, 8},
		{sarama.V2_7_0_0, 2, 4, 8},
		{sarama.V2_8_0_0, 3, 4, 9},
		{sarama.V3_7_0_0, 3, 4, 10},
	}
	for _, c := range cases {
		if got := endTxnVersion(c.v); got != c.endTxn {
			t.Errorf("%s: EndTxn v%d, want v%d", c.v, got, c.endTxn)
		}
		if got := addPartitionsVersion(c.v); got != c.endTxn {
			t.Errorf("%s: AddPartitionsToTxn v%d, want v%d", c.v, got, c.endTxn)
		}
		if got := initProducerIDVersion(c.v); got != c.init {
			t.Errorf("%s: InitProducerID v%d, want v%d", c.v, got, c.init)
		}
		if got, want := findCoordinatorVersion(c.v), map[bool]int16{true: 3, false: 2}[c.v.IsAtLeast(sarama.V2_4_0_0)]; c.v.IsAtLeast(sarama.V2_0_0_0) && got != want {
			t.Errorf("%s: FindCoordinator v%d, want v%d", c.v, got, want)
		}
		if got := produceVersion(c.v); got != c.prod {
			t.Errorf("%s: Produce v%d, want v%d", c.v, got, c.prod)
		}
	}
}

func TestSinkStateRoundTripAndChecks(t *testing.T) {
	b := txnBase("j", "out", 0)
	s := sinkState{Job: "j", Base: b, NextSeq: 3, Pending: []pendingTxn{pend(b, 1, 5, 2, 7), pend(b, 2, 6, 0, 8)}}
	data, err := encodeSinkState(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSinkState(data)
	if err != nil {
		t.Fatal(err)
	}
	s.Version = sinkStateVersion
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, s)
	}
	bad := []struct{ in, want string }{
		{``, "EOF"},
		{`{"version":2,"base":"x"}`, "version 2"},
		{`{"version":1}`, "no transactional id base"},
		{`{"version":1,"base":"x","next_seq":-1}`, "next_seq -1"},
		{`{"version":1,"base":"x","next_seq":1,"nope":1}`, "unknown field"},
		{`{"version":1,"base":"x","next_seq":1,"pending":[{"id":"y-0","producer_id":1,"epoch":0,"checkpoint":1}]}`, "not under"},
		{`{"version":1,"base":"x","next_seq":1,"pending":[{"id":"x-1","producer_id":1,"epoch":0,"checkpoint":1}]}`, "not below next_seq"},
		{`{"version":1,"base":"x","next_seq":1,"pending":[{"id":"x-0","producer_id":-1,"epoch":0,"checkpoint":1}]}`, "producer id -1"},
		{`{"version":1,"base":"x","next_seq":1,"pending":[{"id":"x-0","producer_id":1,"epoch":0,"checkpoint":0}]}`, "checkpoint 0"},
		{`{"version":1,"base":"x"} {}`, "data after"},
	}
	for _, c := range bad {
		_, err := decodeSinkState([]byte(c.in))
		if !errors.Is(err, ErrBadSinkState) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("decode %q: %v, want ErrBadSinkState with %q", c.in, err, c.want)
		}
	}
}

// FuzzDecodeSinkState: the decoder of a sink's snapshot (read back from
// checkpoint storage) never panics, and what it accepts survives a round
// trip and passes planRecovery's input checks.
func FuzzDecodeSinkState(f *testing.F) {
	b := txnBase("j", "out", 0)
	seed, _ := encodeSinkState(sinkState{Job: "j", Base: b, NextSeq: 3, Pending: []pendingTxn{pend(b, 1, 5, 2, 7)}})
	f.Add(seed)
	f.Add([]byte(`{"version":1,"base":"x","next_seq":0}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSinkState(data)
		if err != nil {
			return
		}
		again, err := encodeSinkState(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := decodeSinkState(again)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, s, s2)
		}
		if _, err := planRecovery(sinkIdentity{Job: "j", Base: b, Subtask: 0, Parallelism: 1}, []sinkState{s}); err != nil && !errors.Is(err, ErrBadSinkState) {
			t.Fatal(err)
		}
	})
}
