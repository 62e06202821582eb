package sdk_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/weir-stream/weir/sdk"
)

// table is an outside system with transactions: rows staged per
// transaction id, visible once committed.
type table struct {
	staged    map[string][]string
	committed map[string][]string
}

func (t *table) visible() []string {
	var out []string
	for _, rows := range t.committed {
		out = append(out, rows...)
	}
	slices.Sort(out)
	return out
}

// TableSink writes each checkpoint interval's rows under a transaction id
// and commits by moving them to the committed set.
type TableSink struct {
	t       *table
	prefix  string
	n       int
	current string
}

func (s *TableSink) Open(ctx *sdk.ConnectorContext) error {
	s.prefix = fmt.Sprintf("%s-%d-%d", ctx.JobID(), ctx.Subtask(), ctx.Attempt())
	return nil
}

func (s *TableSink) Write(_ context.Context, in sdk.Record) error {
	if s.current == "" {
		s.current = fmt.Sprintf("%s-%d", s.prefix, s.n)
		s.n++
	}
	s.t.staged[s.current] = append(s.t.staged[s.current], fmt.Sprint(in.Get("word")))
	return nil
}

func (s *TableSink) PreCommit(context.Context, int64) (string, bool, error) {
	id := s.current
	s.current = ""
	return id, id != "", nil
}

func (s *TableSink) Commit(_ context.Context, id string) error {
	if rows, ok := s.t.staged[id]; ok {
		s.t.committed[id] = rows
		delete(s.t.staged, id)
		return nil
	}
	if _, ok := s.t.committed[id]; ok {
		return nil // committed before: Commit is idempotent
	}
	return fmt.Errorf("transaction %s is lost", id)
}

func (s *TableSink) Abort(context.Context) error {
	delete(s.t.staged, s.current)
	s.current = ""
	return nil
}

// Recover aborts what no completed checkpoint covers: every staged
// transaction (one subtask here).
func (s *TableSink) Recover(_ context.Context, _ sdk.Recovery[string]) error {
	for id := range s.t.staged {
		if strings.HasPrefix(id, "test-job-0-") {
			delete(s.t.staged, id)
		}
	}
	return nil
}

// A transactional sink through a failure: checkpoint 1 completes but the
// subtask dies before it hears so, with checkpoint 2 pre-committed and
// more rows open. The restore from checkpoint 1 commits its transaction,
// aborts the rest, and the replay writes the lost rows once.
func Example_transactionalSink() {
	t := &table{staged: map[string][]string{}, committed: map[string][]string{}}
	word := func(w string) sdk.Record { return sdk.NewRecord(map[string]any{"word": w}) }

	h, _ := sdk.NewSinkTestHarness[sdk.Record, string](&TableSink{t: t})
	_ = h.Write(word("a"))
	_ = h.Write(word("b"))
	state1, _ := h.Checkpoint(1)
	_ = h.Write(word("c"))
	_, _ = h.Checkpoint(2) // never completes
	_ = h.Write(word("d"))
	fmt.Println("visible before the failure:", t.visible())

	// The job restarts from checkpoint 1 as attempt 1.
	h2, _ := sdk.NewSinkTestHarness[sdk.Record, string](&TableSink{t: t}, sdk.WithRestore(state1), sdk.WithAttempt(1))
	fmt.Println("visible after the restore:", t.visible(), "staged:", len(t.staged))
	_ = h2.Write(word("c")) // the replay after checkpoint 1
	_ = h2.Write(word("d"))
	_ = h2.EndOfInput()
	fmt.Println("visible at the end:", t.visible())
	// Output:
	// visible before the failure: []
	// visible after the restore: [a b] staged: 0
	// visible at the end: [a b c d]
}
