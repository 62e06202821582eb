package task

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/graph"
)

// offsetSource emits records with i = base + subtask, base + subtask + par,
// ... < base + n, and a final watermark.
type offsetSource struct {
	base, n int
	ctx     *dataflow.Context
}

func (s *offsetSource) Open(ctx *dataflow.Context) error { s.ctx = ctx; return nil }
func (s *offsetSource) Close() error                     { return nil }
func (s *offsetSource) Run(ctx context.Context, out dataflow.SourceOutput) error {
	for i := s.ctx.Subtask; i < s.n; i += s.ctx.Parallelism {
		r := dataflow.Record{Key: fmt.Sprintf("k%d", i%7), Time: int64(i), Fields: dataflow.FieldsOf(map[string]any{"i": int64(s.base + i)})}
		if err := out.Emit(&r); err != nil {
			return err
		}
	}
	return nil
}

// sides is an InputProcessor that records which input each i came from.
type sides struct {
	mu      sync.Mutex
	byInput map[int][]int64
	plain   int // records handed to Process instead
	wms     []int64
}

func (s *sides) Open(*dataflow.Context) error { return nil }
func (s *sides) Close(dataflow.Output) error  { return nil }
func (s *sides) Process(*dataflow.Record, dataflow.Output) error {
	s.mu.Lock()
	s.plain++
	s.mu.Unlock()
	return nil
}

func (s *sides) ProcessInput(input int, r *dataflow.Record, _ dataflow.Output) error {
	s.mu.Lock()
	s.byInput[input] = append(s.byInput[input], r.Fields.Get("i").(int64))
	s.mu.Unlock()
	return nil
}

func (s *sides) ProcessWatermark(wm int64, out dataflow.Output) error {
	s.mu.Lock()
	s.wms = append(s.wms, wm)
	s.mu.Unlock()
	return out.EmitWatermark(wm)
}

// A head that reads its inputs apart (a join) learns each record's input:
// the position of its edge among the vertex's inputs, not the edge's
// number, over local and remote channels and several upstream subtasks.
func TestInputProcessorGetsInputPosition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := startWorker(t, "A"), startWorker(t, "B")
	g := &graph.Graph{MaxParallelism: 128}
	left := vertex("left", 2, srcNode("left"))
	right := vertex("right", 1, srcNode("right"))
	j := vertex("join", 1, opNode("join"))
	g.Vertices = []*graph.Vertex{right, left, j}
	connect(g, right, "right", "", j, dataflow.Hash) // edge 0
	connect(g, left, "left", "", j, dataflow.Hash)   // edge 1
	j.Inputs = []int{1, 0}                           // left is input 0
	s := &sides{byInput: map[int][]int64{}}
	jb := &job{g: g, attempt: 1, placements: map[string][]*worker{"left": {a, b}, "right": {b}, "join": {a}},
		builder: &fakeBuilder{
			sources: map[string]func(*dataflow.Context) dataflow.Source{
				"left":  func(*dataflow.Context) dataflow.Source { return &offsetSource{base: 0, n: 500} },
				"right": func(*dataflow.Context) dataflow.Source { return &offsetSource{base: 1000, n: 300} },
			},
			ops: map[string]func(*dataflow.Context) dataflow.Operator{
				"join": func(*dataflow.Context) dataflow.Operator { return s },
			},
		}}
	results, _ := jb.start(ctx)
	for _, r := range waitAll(t, results, 4, 30*time.Second) {
		if r.err != nil {
			t.Fatalf("%s: %v", r.id, r.err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.plain != 0 {
		t.Fatalf("%d records went to Process", s.plain)
	}
	if len(s.byInput[0]) != 500 || len(s.byInput[1]) != 300 {
		t.Fatalf("left got %d records, right %d; want 500 and 300", len(s.byInput[0]), len(s.byInput[1]))
	}
	for _, i := range s.byInput[0] {
		if i >= 1000 {
			t.Fatalf("right record %d on the left input", i)
		}
	}
	for _, i := range s.byInput[1] {
		if i < 1000 {
			t.Fatalf("left record %d on the right input", i)
		}
	}
	if len(s.wms) == 0 || s.wms[len(s.wms)-1] != dataflow.MaxWatermark {
		t.Fatalf("watermarks %v: want the final one", s.wms)
	}
}
